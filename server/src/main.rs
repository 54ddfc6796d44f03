//! `p2pnet-server`: see `p2pnet-server --help` and config.example.toml.

use std::process::ExitCode;

use clap::Parser;
use server::{
    Server,
    config::{Cli, Config},
    shutdown, telemetry,
};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
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
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
