//! `nija config validate FILE`: every problem of a configuration at once, each with its key path.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use nija_config::{Config, ProcessEnv};
use serde_json::json;

use super::{Failure, print_json, usage};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    nija config validate /etc/nija/nija.toml\n  \
    nija config validate nija.toml --json")]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub op: ConfigOp,
}

#[derive(Debug, Subcommand)]
pub enum ConfigOp {
    /// Load and check a configuration file (and its accounts_file); exit 2 listing every problem.
    Validate {
        file: PathBuf,
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: ConfigArgs) -> Result<(), Failure> {
    let ConfigOp::Validate { file, json } = args.op;
    match Config::load(&file, &ProcessEnv) {
        Ok(loaded) => {
            let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
            if json {
                print_json(&json!({
                    "file": file,
                    "valid": true,
                    "accounts": loaded.config.accounts.len(),
                    "warnings": warnings,
                    "errors": [],
                }))?;
            } else {
                println!(
                    "{} is valid: {} accounts",
                    file.display(),
                    loaded.config.accounts.len()
                );
                for w in &warnings {
                    println!("  warning: {w}");
                }
            }
            Ok(())
        }
        Err(errors) => {
            if json {
                let list: Vec<_> = errors
                    .errors
                    .iter()
                    .map(|e| json!({"key": e.key(), "message": e.to_string()}))
                    .collect();
                print_json(&json!({
                    "file": file,
                    "valid": false,
                    "errors": list,
                }))?;
            }
            Err(usage(anyhow!("{}", errors.to_string().trim_end())))
        }
    }
}
