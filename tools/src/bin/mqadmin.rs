//! `mqadmin`: RocketMQ cluster administration (topics, groups, consumer progress, messages).
//!
//! `mqadmin <command> -n <namesrv> [options]`; `mqadmin help` lists the commands. Exit
//! status: 0 on success, 1 when the command fails, 2 on a usage error.

use clap::Parser;
use rocketmq_tools::admin::{Cli, run_cli};

fn main() {
    let cli = Cli::parse_from(rocketmq_tools::admin::cli::java_style_args(std::env::args()));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqadmin: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = runtime.block_on(run_cli(&cli, &mut stdout)) {
        eprintln!("mqadmin {}: {e}", cli.command.name());
        std::process::exit(1);
    }
}
