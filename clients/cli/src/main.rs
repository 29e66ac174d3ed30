use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    fastchat_cli::run(fastchat_cli::Cli::parse())
}
