//! `p2pnet-server`: see `p2pnet-server --help` and config.example.toml.

use std::{ffi::OsStr, os::unix::process::CommandExt, process::ExitCode};

use clap::Parser;
use server::{
    Server,
    config::{Cli, Config},
    shutdown, telemetry,
};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    quiet_vulkan_layers();
    raise_net_raw();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve())
}

/// The variable that switches Mesa's Vulkan device-select layer off.
const NODEVICE_SELECT: &str = "NODEVICE_SELECT";

/// On a headless machine, Mesa's Vulkan device-select layer asks
/// libwayland for a display whenever a GPU scan opens a wgpu instance, and
/// libwayland prints `XDG_RUNTIME_DIR is invalid or not set` to stderr,
/// twice per instance: noise nobody asked for. The layer's off switch is
/// an environment variable the Vulkan loader reads; setting it in this
/// process would need `unsafe` (another thread may read the environment
/// meanwhile), so the server restarts itself once with it set, before any
/// thread exists. It loses nothing: widescan picks adapters itself. An
/// operator's own setting (or `MESA_VK_DEVICE_SELECT`) is kept.
fn quiet_vulkan_layers() {
    if std::env::var_os(NODEVICE_SELECT).is_some()
        || std::env::var_os("MESA_VK_DEVICE_SELECT").is_some()
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(NODEVICE_SELECT, OsStr::new("1"))
        .exec();
    // Only reached when the exec failed: run on, noisy but working.
    eprintln!(
        "warning: cannot restart with {NODEVICE_SELECT}=1 ({error}); GPU scans may print Vulkan layer noise"
    );
}

/// Scan jobs open raw ICMPv6 sockets, which need `CAP_NET_RAW` in the
/// effective set. The Docker image gives the binary that capability as
/// *permitted* only (`setcap cap_net_raw+p`), never `+ep`: the kernel
/// refuses to exec a binary whose effective file capabilities it cannot
/// grant, so a container started without `NET_RAW` would not start at all.
/// Raised here, before any thread exists (threads inherit the set), it
/// serves every worker; where it is not permitted, scans fail with a clear
/// `CAP_NET_RAW` error and everything else runs.
fn raise_net_raw() {
    use caps::{CapSet, Capability};
    let permitted = caps::has_cap(None, CapSet::Permitted, Capability::CAP_NET_RAW);
    let effective = caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_RAW);
    if let (Ok(true), Ok(false)) = (permitted, effective)
        && let Err(e) = caps::raise(None, CapSet::Effective, Capability::CAP_NET_RAW)
    {
        eprintln!("warning: cannot raise CAP_NET_RAW ({e}); scan jobs will be refused");
    }
}

async fn serve() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_filter, config.log_format);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = report(&e);
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: many errors
/// already show their source in their own message (`cannot connect …:
/// {source}`), and `{:#}` would print it again after them.
fn report(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

async fn run(config: Config) -> anyhow::Result<()> {
    let user = config.admin_user.clone();
    let mut server = Server::bind(config).await?;
    if let Some(password) = server.take_generated_password() {
        // Printed once, to the terminal only: it never goes through the logger.
        println!(
            "\n  First start: administrator `{user}` created.\n  \
             Generated admin password (shown once): {password}\n  \
             Set auth.admin_password before the first start to choose it instead.\n"
        );
    }
    for addr in server.local_addrs() {
        println!("  Control panel: http://{addr}/");
    }
    let token = CancellationToken::new();
    tokio::spawn(shutdown::on_signal(token.clone()));
    server.serve(token).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::report;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect to the database: {source}")]
    struct Connect {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::other("database \"p2pnet\" does not exist");
        let error = anyhow::Error::new(Connect { source: io }).context("starting the server");
        assert_eq!(
            report(&error),
            "starting the server: cannot connect to the database: database \"p2pnet\" does not exist"
        );
        let plain = anyhow::anyhow!("refused").context("binding 127.0.0.1:3000");
        assert_eq!(report(&plain), "binding 127.0.0.1:3000: refused");
    }
}
