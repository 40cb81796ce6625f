//! `nija-sim`: a local exchange simulator serving the Coinbase Advanced Trade, Kraken Spot and
//! Alpaca Trading (+ market data) wire protocols on loopback, one port per broker, plain HTTP and
//! HTTPS on the same port. It is the counterpart of every nija test and benchmark.
//!
//! # In-process use (adapter and end-to-end tests)
//!
//! ```no_run
//! use nija_sim::{Broker, Sim, SimOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // 10 generated accounts (platform on Kraken, users over all three brokers), frozen prices.
//! let mut options = SimOptions::generated(10, 6, 42);
//! options.motion.frozen = true;
//! let sim = Sim::start(options).await?;
//!
//! let url = sim.base_url(Broker::Kraken);          // "http://127.0.0.1:<port>"
//! let https = sim.https_base_url(Broker::Coinbase); // same port, TLS; trust sim.ca_cert_pem()
//! let account = sim.account("user-0001").expect("seeded");
//! let creds_json = account.credentials.to_json();  // {"name","privateKey"} / {"key","secret"} / {"key_id","secret_key"}
//!
//! // Test control without HTTP (the admin port offers the same over HTTP):
//! sim.admin().set_price("BTC-USD", "50000".parse().unwrap(), true)?;
//! let log = sim.admin().order_log();                // every order with fill
//! sim.admin().set_faults(nija_sim::FaultSpec { rate_limits: Some(2), ..Default::default() });
//! # let _ = (url, https, creds_json, log);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Scenario files (JSON/TOML) load with [`Scenario::load`] and go into [`SimOptions::scenario`].
//! Credentials derive from the seed and the account id, so a restart with the same seed accepts
//! the same credential files.

pub mod admin;
pub mod broker;
pub mod credentials;
pub mod exchange;
pub mod faults;
pub mod market;
pub mod seed;

mod alpaca;
mod coinbase;
mod config_out;
mod front;
mod kraken;
mod net;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use admin::{AccountBalances, Admin, AdminError, ExternalTrade};
pub use broker::Broker;
pub use credentials::Credentials;
pub use exchange::LoggedOrder;
pub use exchange::account::{AccountInfo, AccountType, Balance};
pub use exchange::order::{Order, OrderKind, OrderSource, OrderStatus, Side};
pub use faults::{FaultSpec, LostResponse};
pub use market::prices::{PriceMotion, Quote};
pub use seed::generate::Generate;
pub use seed::scenario::{ProductOverride, Scenario, ScenarioAccount, ScenarioHolding};

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Accounts, prices, rules and failing symbols.
    pub scenario: Scenario,
    /// Seed of the credentials (and of the price walk unless `motion.seed` is set differently).
    pub seed: u64,
    pub motion: PriceMotion,
    /// Address to bind (default 127.0.0.1).
    pub host: IpAddr,
    /// Ports; 0 picks a free port.
    pub coinbase_port: u16,
    pub kraken_port: u16,
    pub alpaca_port: u16,
    pub admin_port: u16,
    /// Folder for the CA certificate (`sim-ca.pem`); default: a temporary folder owned by the handle.
    pub tls_dir: Option<PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            scenario: Scenario::default(),
            seed: 0,
            motion: PriceMotion::default(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            coinbase_port: 0,
            kraken_port: 0,
            alpaca_port: 0,
            admin_port: 0,
            tls_dir: None,
        }
    }
}

impl SimOptions {
    /// A generated fleet: `accounts` accounts with about `positions` positions each.
    pub fn generated(accounts: usize, positions: usize, seed: u64) -> SimOptions {
        SimOptions::from_scenario(seed::generate::generate(Generate {
            accounts,
            positions,
            seed,
        }))
    }

    /// Accounts and prices from a scenario; its `seed` (default 0) seeds credentials and walk.
    pub fn from_scenario(scenario: Scenario) -> SimOptions {
        let seed = scenario.seed.unwrap_or(0);
        SimOptions {
            scenario,
            seed,
            motion: PriceMotion {
                seed,
                ..PriceMotion::default()
            },
            ..SimOptions::default()
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] seed::scenario::ScenarioError),
    #[error(transparent)]
    Tls(#[from] net::tls::TlsError),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The bound ports (what the binary prints as its ready line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub coinbase: u16,
    pub kraken: u16,
    pub alpaca: u16,
    pub admin: u16,
}

/// Entry point.
pub struct Sim;

impl Sim {
    /// Builds the exchange, binds every port and starts serving. Returns once all ports accept.
    pub async fn start(options: SimOptions) -> Result<SimHandle, SimError> {
        // A process-wide provider for clients in the same process (reqwest with rustls-no-provider).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exchange = Arc::new(seed::build(
            &options.scenario,
            options.seed,
            options.motion.spread,
            options.motion.frozen,
        )?);
        let tls = net::tls::generate()?;
        let (tempdir, tls_dir) = match &options.tls_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("nija-sim-")
                    .tempdir()
                    .map_err(|source| SimError::Write {
                        path: "temporary folder".into(),
                        source,
                    })?;
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let ca_path = std::path::absolute(tls_dir.join("sim-ca.pem"))
            .unwrap_or_else(|_| tls_dir.join("sim-ca.pem"));
        std::fs::create_dir_all(&tls_dir)
            .and_then(|_| std::fs::write(&ca_path, &tls.ca_pem))
            .map_err(|source| SimError::Write {
                path: ca_path.display().to_string(),
                source,
            })?;
        let acceptor = TlsAcceptor::from(Arc::clone(&tls.server_config));
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        let bind = |what: &'static str, port: u16| {
            let addr = SocketAddr::new(options.host, port);
            async move {
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| SimError::Bind { what, addr, source })
            }
        };
        let admin = Admin::new(Arc::clone(&exchange));
        let servers: [(&'static str, u16, axum::Router, &'static [&'static str]); 4] = [
            (
                "coinbase",
                options.coinbase_port,
                coinbase::router(Arc::clone(&exchange)),
                coinbase::MARKERS,
            ),
            (
                "kraken",
                options.kraken_port,
                kraken::router(Arc::clone(&exchange)),
                kraken::MARKERS,
            ),
            (
                "alpaca",
                options.alpaca_port,
                alpaca::router(Arc::clone(&exchange)),
                alpaca::MARKERS,
            ),
            (
                "admin",
                options.admin_port,
                admin::routes::router(admin.clone()),
                admin::routes::MARKERS,
            ),
        ];
        let mut bound = [0u16; 4];
        for (i, (what, port, router, markers)) in servers.into_iter().enumerate() {
            let listener = bind(what, port).await?;
            bound[i] = listener.local_addr().map(|a| a.port()).unwrap_or(port);
            tasks.push(tokio::spawn(net::listener::serve(
                listener,
                router,
                acceptor.clone(),
                markers,
                shutdown.clone(),
            )));
        }
        if !options.motion.frozen {
            let mut motion = options.motion.clone();
            if motion.seed == 0 {
                motion.seed = options.seed;
            }
            tasks.push(tokio::spawn(
                Arc::clone(&exchange.market.prices).walk(motion),
            ));
        }
        let ports = Ports {
            coinbase: bound[0],
            kraken: bound[1],
            alpaca: bound[2],
            admin: bound[3],
        };
        tracing::info!(
            ?ports,
            accounts = exchange.accounts().count(),
            "nija-sim ready"
        );
        Ok(SimHandle {
            exchange,
            admin,
            host: options.host,
            ports,
            ca_pem: tls.ca_pem,
            ca_path,
            _tempdir: tempdir,
            shutdown,
            tasks,
        })
    }
}

/// A running simulator. Dropping it stops the servers.
pub struct SimHandle {
    exchange: Arc<exchange::Exchange>,
    admin: Admin,
    host: IpAddr,
    ports: Ports,
    ca_pem: String,
    ca_path: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    pub fn ports(&self) -> Ports {
        self.ports
    }

    pub fn port(&self, broker: Broker) -> u16 {
        match broker {
            Broker::Coinbase => self.ports.coinbase,
            Broker::Kraken => self.ports.kraken,
            Broker::Alpaca => self.ports.alpaca,
        }
    }

    fn authority(&self, port: u16) -> String {
        match self.host {
            IpAddr::V6(ip) => format!("[{ip}]:{port}"),
            IpAddr::V4(ip) => format!("{ip}:{port}"),
        }
    }

    /// `http://127.0.0.1:<port>` of a broker (adapters append the broker's standard paths).
    pub fn base_url(&self, broker: Broker) -> String {
        format!("http://{}", self.authority(self.port(broker)))
    }

    /// `https://127.0.0.1:<port>`: the same port over TLS (trust [`SimHandle::ca_cert_pem`]).
    pub fn https_base_url(&self, broker: Broker) -> String {
        format!("https://{}", self.authority(self.port(broker)))
    }

    /// `http://127.0.0.1:<admin port>` (routes under `/admin/`).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.authority(self.ports.admin))
    }

    /// The CA certificate (PEM) that signs the simulator's HTTPS certificate.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_path
    }

    pub fn accounts(&self) -> Vec<AccountInfo> {
        self.admin.accounts()
    }

    pub fn account(&self, id: &str) -> Option<AccountInfo> {
        self.exchange.account(id).map(|a| a.info.clone())
    }

    /// In-process test control (prices, faults, order log, external trades, credentials, clock).
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Taker fee rate of a broker (from the scenario; default 0).
    pub fn fee_rate(&self, broker: Broker) -> Decimal {
        self.exchange.fee_rate(broker)
    }

    /// Writes a nija config for every seeded account (see `--write-config`). Returns the CA path.
    pub fn write_config(&self, path: &Path, nats_url: &str) -> Result<PathBuf, SimError> {
        let endpoints = config_out::Endpoints {
            coinbase: self.base_url(Broker::Coinbase),
            kraken: self.base_url(Broker::Kraken),
            alpaca: self.base_url(Broker::Alpaca),
        };
        config_out::write_config(path, nats_url, &endpoints, &self.ca_pem, &self.accounts())
            .map_err(|source| SimError::Write {
                path: path.display().to_string(),
                source,
            })
    }

    /// Stops every server and the price walk.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}
