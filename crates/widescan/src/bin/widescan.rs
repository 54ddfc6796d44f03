//! `widescan`: scan IPv6 prefixes for live hosts and P2PNet instances, or listen for
//! other instances, with a live progress line.
//!
//! ```text
//! widescan scan --prefix "$PREFIX" --port 4000 --rate 1000 --output hits.ndjson
//! widescan scan --prefix-file targets.txt --port 4000 --dry-run | head
//! widescan listen --port 4000
//! ```
//!
//! `widescan listen` answers probes only from global unicast sources outside the
//! reserved ranges (a probe's source can be forged, and an answer goes there), and
//! reports no hits, since it probes nothing.
//!
//! Nothing is scanned without explicit prefixes, and only inside `2000::/3` minus
//! the reserved ranges (so documentation prefixes such as `2001:db8::/32` are
//! refused). Ctrl-C stops cleanly and prints the checkpoint to resume from.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use widescan::{
    AddressSpace, Contact, Error, ErrorCounts, ErrorType, Event, Generator, HardwareMode, Identity,
    Listener, ListenerOptions, MacAddr, OutputFormat, Prefix, ProbeCodec, ResultWriter, RunKey,
    Scan, Shard, TargetSet, Transport,
    prefix::{AddressPolicy, parse_prefix_list},
};

#[derive(Parser, Debug)]
#[command(
    name = "widescan",
    version,
    about = "IPv6 discovery scans for P2PNet, safe by default"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Probe every address of the given prefixes once, in a keyed random order.
    Scan(Box<ScanArgs>),
    /// Only listen: report other instances that probe this host, and answer them.
    Listen(ListenArgs),
}

#[derive(Args, Debug)]
struct Announce {
    /// TCP port of the local p2pnet node, announced in probes and answers.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Contact string carried in probes (printable ASCII, at most 64 bytes), e.g. a
    /// URL that explains the scan and offers an opt-out.
    #[arg(long, default_value = "")]
    contact: String,
    /// Restrict sending and listening to this interface.
    #[arg(long)]
    interface: Option<String>,
    /// Results file ("-" or absent: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Results format.
    #[arg(long, default_value = "ndjson", value_parser = parse_format)]
    format: OutputFormat,
}

#[derive(Args, Debug)]
struct ScanArgs {
    /// A prefix to scan, as ADDRESS/LEN inside 2000::/3 (repeatable; commas allowed).
    #[arg(
        long = "prefix",
        short = 'p',
        value_delimiter = ',',
        required_unless_present = "prefix_file"
    )]
    prefixes: Vec<String>,
    /// A file of prefixes, one or more per line, '#' comments.
    #[arg(long)]
    prefix_file: Vec<PathBuf>,
    /// A range never to probe (repeatable).
    #[arg(long = "exclude", value_delimiter = ',')]
    excludes: Vec<String>,
    /// A file of ranges never to probe.
    #[arg(long)]
    exclude_file: Vec<PathBuf>,
    /// Admit prefixes outside 2000::/3 and reserved ranges. Only for networks you own
    /// (test namespaces, labs).
    #[arg(long, hide = true)]
    test_mode: bool,
    /// Probes per second, all targets together.
    #[arg(long, default_value_t = widescan::sender::DEFAULT_RATE_PPS)]
    rate: u32,
    /// Probes per second into any one /64 (0 disables the cap).
    #[arg(long, default_value_t = widescan::sender::DEFAULT_PER_SUBNET_PPS)]
    per_subnet_rate: u32,
    /// Seed of the scan order (default: random; printed at the end for resuming).
    #[arg(long)]
    seed: Option<u64>,
    /// Scan only shard k of n (0-based), e.g. 0/4.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Resume at this checkpoint index (needs the same prefixes, seed and shard).
    #[arg(long)]
    resume_from: Option<u128>,
    /// Where to generate addresses.
    #[arg(long, default_value = "auto", value_parser = parse_hardware)]
    hardware: HardwareMode,
    /// Memory for generated addresses in flight, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Seconds to keep listening after the last probe.
    #[arg(long, default_value_t = 3.0)]
    cooldown: f64,
    /// Source address for probes.
    #[arg(long)]
    source: Option<Ipv6Addr>,
    /// How probes leave: `kernel` (raw ICMPv6 socket, any route) or `packet`
    /// (Ethernet frames to the targets' gateway via AF_PACKET; several times faster,
    /// needs every prefix routed through one gateway).
    #[arg(long, default_value = "kernel", value_parser = ["kernel", "packet"])]
    transport: String,
    /// With --transport packet: the gateway's MAC, when the neighbour table lacks it.
    #[arg(long, value_parser = parse_mac)]
    gateway_mac: Option<MacAddr>,
    /// Print the addresses that would be probed, one per line, and exit (no network).
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run, print at most this many addresses.
    #[arg(long, default_value_t = 1000)]
    limit: u64,
    #[command(flatten)]
    announce: Announce,
}

#[derive(Args, Debug)]
struct ListenArgs {
    /// Answer probes from sources outside 2000::/3 and in reserved ranges. Only for
    /// networks you own (test namespaces, labs).
    #[arg(long, hide = true)]
    test_mode: bool,
    #[command(flatten)]
    announce: Announce,
}

fn parse_mac(s: &str) -> Result<MacAddr, String> {
    s.parse().map_err(|e: widescan::Error| e.to_string())
}

fn parse_format(s: &str) -> Result<OutputFormat, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_hardware(s: &str) -> Result<HardwareMode, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Turns off Mesa's device-select Vulkan layer unless the user steers it.
///
/// The Vulkan loader loads that layer into every instance, implicitly. When the
/// instance enables `VK_KHR_wayland_surface`, which wgpu always does and offers no
/// way not to, the layer asks libwayland for a display, and on a machine without
/// `XDG_RUNTIME_DIR` (a server, a container, an SSH session) libwayland prints
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." on stderr,
/// once per instance. The layer only orders GPUs by the display they drive;
/// widescan presents nothing and picks its adapter itself, so nothing is lost.
/// `NODEVICE_SELECT` is the layer's own off switch (its manifest's
/// `disable_environment`). A user who sets it, or picks a device through the layer
/// with `MESA_VK_DEVICE_SELECT`, keeps the layer as configured.
#[allow(unsafe_code)] // std::env::set_var
fn quiet_vulkan_device_select() {
    if std::env::var_os("NODEVICE_SELECT").is_none()
        && std::env::var_os("MESA_VK_DEVICE_SELECT").is_none()
    {
        // SAFETY: main calls this first, before any thread exists, so nothing reads
        // or writes the environment concurrently.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

fn main() -> ExitCode {
    quiet_vulkan_device_select();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(*args),
        Command::Listen(args) => listen(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("widescan: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn read_list(
    paths: &[PathBuf],
    words: &[String],
) -> Result<Vec<Prefix>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for w in words {
        out.push(w.parse::<Prefix>()?);
    }
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        out.extend(parse_prefix_list(&text).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    Ok(out)
}

fn writer(a: &Announce) -> Result<ResultWriter<Box<dyn Write + Send>>, Box<dyn std::error::Error>> {
    let out: Box<dyn Write + Send> = match &a.output {
        Some(p) if p.as_os_str() != "-" => Box::new(BufWriter::new(
            File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        _ => Box::new(BufWriter::new(io::stdout())),
    };
    Ok(ResultWriter::new(out, a.format))
}

fn identity(a: &Announce) -> Result<Identity, Error> {
    Identity::random(a.port, Contact::new(a.contact.clone())?)
}

fn ctrl_c() -> Result<Arc<AtomicBool>, Box<dyn std::error::Error>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::Relaxed))?;
    Ok(flag)
}

fn scan(args: ScanArgs) -> CliResult {
    let prefixes = read_list(&args.prefix_file, &args.prefixes)?;
    if prefixes.is_empty() {
        return Err("no prefixes given; widescan never chooses targets on its own".into());
    }
    let excludes = read_list(&args.exclude_file, &args.excludes)?;
    if args.test_mode {
        eprintln!("widescan: TEST MODE: ranges outside 2000::/3 and reserved ranges are admitted");
    }
    let targets = TargetSet::builder()
        .prefixes(prefixes)
        .excludes(excludes)
        .test_mode(args.test_mode)
        .build()?;
    if args.dry_run {
        return dry_run(targets, &args);
    }
    if !args.cooldown.is_finite() || args.cooldown < 0.0 {
        return Err("--cooldown must be a non-negative number of seconds".into());
    }
    let mut builder = Scan::builder(targets, identity(&args.announce)?)
        .rate(args.rate)
        .per_subnet_rate((args.per_subnet_rate > 0).then_some(args.per_subnet_rate))
        .hardware(args.hardware)
        .memory_limit(args.memory_mib.saturating_mul(1 << 20))
        .cooldown(Duration::from_secs_f64(args.cooldown));
    if let Some(s) = args.seed {
        builder = builder.seed(s);
    }
    if let Some(s) = args.shard {
        builder = builder.shard(s);
    }
    if let Some(c) = args.resume_from {
        builder = builder.resume_from(c);
    }
    if let Some(i) = &args.announce.interface {
        builder = builder.interface(i.clone());
    }
    if let Some(src) = args.source {
        builder = builder.source(src);
    }
    if args.transport == "packet" {
        builder = builder.transport(Transport::Packet {
            gateway_mac: args.gateway_mac,
        });
    } else if args.gateway_mac.is_some() {
        return Err("--gateway-mac only applies to --transport packet".into());
    }
    let scan = builder.build()?;
    let seed = scan.seed();
    let range = scan.range();
    let mut out = writer(&args.announce)?;
    let interrupted = ctrl_c()?;
    let handle = scan.start()?;
    eprintln!(
        "widescan: {} targets (indices {}..{}), seed {seed}, {} probes/s, generating on {}",
        range.len(),
        range.start,
        range.end,
        args.rate,
        handle.hardware()
    );

    let bar = ProgressBar::with_draw_target(Some(100_000), ProgressDrawTarget::stderr_with_hz(5));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut last = handle.progress();
    let mut last_draw = std::time::Instant::now();
    let mut stopping = false;
    while !handle.is_finished() {
        if interrupted.load(Ordering::Relaxed) && !stopping {
            stopping = true;
            handle.stop();
        }
        if let Ok(ev) = handle.events().recv_timeout(Duration::from_millis(50)) {
            out.write(&ev)?;
        }
        if last_draw.elapsed() >= Duration::from_millis(250) {
            let p = handle.progress();
            let r = p.rates_since(&last);
            bar.set_position((p.fraction() * 100_000.0) as u64);
            bar.set_message(format!(
                "sent {} ({:.0}/s)  recv {:.0}/s  hits {}  peers {}  errors {}  eta {}  {:?}",
                p.sent,
                r.sent_per_sec,
                r.received_per_sec,
                p.hits,
                p.peers,
                p.errors.total(),
                p.eta().map_or("?".into(), |d| format!("{}s", d.as_secs())),
                p.phase,
            ));
            last = p;
            last_draw = std::time::Instant::now();
        }
    }
    for ev in handle.events().try_iter() {
        out.write(&ev)?;
    }
    out.flush()?;
    bar.finish_and_clear();
    let report = handle.join()?;
    eprintln!(
        "widescan: sent {} ({} failed) in {:.3}s, {} hits, {} peers, {}",
        report.sent,
        report.send_errors,
        report.send_elapsed.as_secs_f64(),
        report.hits,
        report.peers,
        describe_errors(&report.errors)
    );
    if !report.completed {
        eprintln!(
            "widescan: stopped at checkpoint {}; resume with --seed {} --resume-from {}{}",
            report.checkpoint,
            report.seed,
            report.checkpoint,
            args.shard
                .map(|s| format!(" --shard {s}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// "no ICMPv6 errors", or e.g. "ICMPv6 errors: 2 destination_unreachable, 1 time_exceeded".
fn describe_errors(errors: &ErrorCounts) -> String {
    let parts: Vec<String> = [
        ErrorType::DestinationUnreachable,
        ErrorType::PacketTooBig,
        ErrorType::TimeExceeded,
        ErrorType::ParameterProblem,
    ]
    .into_iter()
    .filter(|&ty| errors.of(ty) > 0)
    .map(|ty| format!("{} {}", errors.of(ty), ty.as_str()))
    .collect();
    if parts.is_empty() {
        "no ICMPv6 errors".into()
    } else {
        format!("ICMPv6 errors: {}", parts.join(", "))
    }
}

fn dry_run(targets: TargetSet, args: &ScanArgs) -> CliResult {
    let seed = args.seed.unwrap_or(0);
    let space = AddressSpace::new(targets, seed)?;
    let mut range = args.shard.unwrap_or_default().range(space.len());
    if let Some(c) = args.resume_from {
        range = range.resume_from(c)?;
    }
    let count = usize::try_from(range.len().min(u128::from(args.limit))).unwrap_or(usize::MAX);
    let mut generator = Generator::new(space, args.hardware)?;
    let mut stdout = BufWriter::new(io::stdout().lock());
    let mut buf = vec![[0u8; 16]; count.min(1 << 16)];
    let mut done = 0usize;
    while done < count {
        let n = (count - done).min(buf.len());
        generator.fill(range.start + done as u128, &mut buf[..n])?;
        for a in &buf[..n] {
            writeln!(stdout, "{}", Ipv6Addr::from(*a))?;
        }
        done += n;
    }
    stdout.flush()?;
    eprintln!(
        "widescan: dry run, seed {seed}: {done} of {} addresses printed, nothing sent",
        range.len()
    );
    Ok(())
}

fn listen(args: ListenArgs) -> CliResult {
    let codec = ProbeCodec::new(RunKey::random()?, identity(&args.announce)?);
    if args.test_mode {
        eprintln!(
            "widescan: TEST MODE: probes from outside 2000::/3 and reserved ranges are answered"
        );
    }
    eprintln!(
        "widescan: listening as instance {:016x}, announcing TCP port {}",
        codec.identity().instance_id(),
        args.announce.port
    );
    let mut out = writer(&args.announce)?;
    let interrupted = ctrl_c()?;
    let (listener, events) = Listener::start(
        codec,
        ListenerOptions {
            interface: args.announce.interface.clone(),
            answer_policy: Some(AddressPolicy::default().test_mode(args.test_mode)),
            ..ListenerOptions::default()
        },
    )?;
    while !interrupted.load(Ordering::Relaxed) {
        if let Ok(ev) = events.recv_timeout(Duration::from_millis(100)) {
            out.write(&ev)?;
            if matches!(ev, Event::Peer(_)) {
                out.flush()?;
            }
        }
    }
    let stats = listener.join()?;
    for ev in events.try_iter() {
        out.write(&ev)?;
    }
    out.flush()?;
    // No hits: a listener alone probes nothing (see `ListenerOptions::hit_targets`).
    eprintln!(
        "widescan: {} peers, {} answers sent ({} suppressed, {} probes refused by policy), {}",
        stats.peers,
        stats.answers_sent,
        stats.answers_suppressed,
        stats.answers_refused_policy,
        describe_errors(&stats.errors)
    );
    Ok(())
}
