//! `fastchat-server`: see docs/interface.md; the flags and the serving loop are in
//! [`fastchat_server::cli`].

use std::process::ExitCode;

use clap::Parser;
use fastchat_server::cli::{Args, serve};

fn main() -> ExitCode {
    let args = Args::parse();
    fastchat_runtime::init_logging();
    fastchat_runtime::run(serve(args, fastchat_runtime::shutdown_signal()))
}
