//! The operator commands that talk to the coordinator, one file per command. They share one NATS
//! connection per invocation ([`Session`]) and the exit codes of DESIGN §5.4.

pub mod blacklist;
pub mod config;
pub mod enforce;
pub mod normalize;
pub mod pause;
pub mod status;
pub mod track;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use nija_config::{Config, ProcessEnv};
use nija_proto::control::{ControlError, ErrorCode, Reply};
use nija_proto::messages::{Message, decode, encode};
use nija_proto::names::control_subject;
use nija_runtime::connect::{NatsSettings, connect};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Exit codes (DESIGN §5.4): some accounts failed; usage or configuration error; NATS or the
/// coordinator unreachable.
pub const EXIT_SOME_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

pub fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        error: e.into(),
    }
}

pub fn unreachable(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_UNREACHABLE,
        error: e.into(),
    }
}

/// Options every coordinator command takes.
#[derive(Debug, Args)]
pub struct Conn {
    /// The nija configuration file (for the NATS connection).
    #[arg(long, env = "NIJA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout (logs stay on stderr).
    #[arg(long)]
    pub json: bool,
    /// How long to wait for each coordinator answer.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Recorded as who asked (default: the OS user).
    #[arg(long)]
    pub operator: Option<String>,
}

impl Conn {
    pub fn operator(&self) -> String {
        self.operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("USERNAME").ok())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// One NATS connection to the coordinator's control API.
pub struct Session {
    client: async_nats::Client,
    timeout: Duration,
}

impl Session {
    pub async fn open(conn: &Conn) -> Result<Session, Failure> {
        let loaded = Config::load_located(conn.config.as_deref(), &ProcessEnv)
            .map_err(|e| usage(anyhow!("{e}")))?;
        let n = &loaded.config.nats;
        let mut settings = NatsSettings::new(n.urls.clone());
        settings.creds = n.creds.clone();
        settings.nkey = n.nkey.clone();
        settings.tls_ca = n.tls_ca.clone();
        settings.tls_cert = n.tls_cert.clone();
        settings.tls_key = n.tls_key.clone();
        let client = connect(&settings, "nija-cli").await.map_err(unreachable)?;
        Ok(Session {
            client,
            timeout: conn.timeout,
        })
    }

    /// One control request; a coordinator error is a usage error (2) except `internal` (3).
    pub async fn call<Req: Message, Rep: DeserializeOwned>(
        &self,
        verb: &str,
        req: &Req,
    ) -> Result<Rep, Failure> {
        let subject = control_subject(verb);
        let reply = tokio::time::timeout(
            self.timeout,
            self.client.request(subject.clone(), encode(req).into()),
        )
        .await
        .map_err(|_| {
            unreachable(anyhow!(
                "the coordinator did not answer on {subject} within {:?}: check that it runs \
                 (nija status, its /healthz) and is connected to the same NATS server, or raise \
                 --timeout",
                self.timeout
            ))
        })?
        .map_err(|e| {
            unreachable(anyhow!(
                "no coordinator answers on {subject} ({e}): check that the coordinator runs and \
                 uses the same NATS server and account"
            ))
        })?;
        match decode::<Reply<Rep>>(&reply.payload)
            .map_err(|e| unreachable(anyhow!("unreadable reply on {subject}: {e}")))?
        {
            Reply::Ok(rep) => Ok(rep),
            Reply::Error(e @ ControlError { code, .. }) => Err(match code {
                ErrorCode::Internal | ErrorCode::Timeout => unreachable(anyhow!("{e}")),
                _ => usage(anyhow!("{e}")),
            }),
        }
    }
}

pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(usage)?;
    println!("{text}");
    Ok(())
}
