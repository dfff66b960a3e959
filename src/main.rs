#![forbid(unsafe_code)]
//! `portcullis`: parse the command line and hand over to [`portcullis::cli::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    portcullis::cli::run(portcullis::cli::Cli::parse())
}
