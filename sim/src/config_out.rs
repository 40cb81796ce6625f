//! `--write-config`: a nija TOML (DESIGN §5) and 0600 credential files for the seeded accounts.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::broker::Broker;
use crate::exchange::account::AccountInfo;

/// Where each broker's simulator listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub coinbase: String,
    pub kraken: String,
    pub alpaca: String,
}

impl Endpoints {
    fn of(&self, broker: Broker) -> &str {
        match broker {
            Broker::Coinbase => &self.coinbase,
            Broker::Kraken => &self.kraken,
            Broker::Alpaca => &self.alpaca,
        }
    }
}

fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)
}

/// Writes `config` plus `creds/<id>.json` and `sim-ca.pem` beside it.
pub fn write_config(
    config: &Path,
    nats_url: &str,
    endpoints: &Endpoints,
    ca_pem: &str,
    accounts: &[AccountInfo],
) -> std::io::Result<PathBuf> {
    let folder = match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(folder.join("creds"))?;
    let ca_path = std::path::absolute(folder.join("sim-ca.pem"))?;
    std::fs::write(&ca_path, ca_pem)?;

    let mut text =
        String::from("# Written by nija-sim --write-config: accounts seeded in the simulator.\n\n");
    let _ = writeln!(text, "[nats]\nurl = {}\n", quote(nats_url));
    let _ = writeln!(
        text,
        "[tls]\nextra_ca = {}\n",
        quote(&ca_path.display().to_string())
    );
    for account in accounts {
        let file = format!("creds/{}.json", account.id);
        let json = serde_json::to_vec_pretty(&account.credentials.to_json())
            .map_err(std::io::Error::other)?;
        write_private(&folder.join(&file), &json)?;
        let base_url = endpoints.of(account.broker);
        let _ = writeln!(text, "[[accounts]]");
        let _ = writeln!(text, "id = {}", quote(&account.id));
        let _ = writeln!(text, "type = {}", quote(account.kind.as_str()));
        let _ = writeln!(text, "broker = {}", quote(account.broker.as_str()));
        let _ = writeln!(text, "base_url = {}", quote(base_url));
        if account.broker == Broker::Alpaca {
            let _ = writeln!(text, "data_url = {}", quote(base_url));
        }
        let _ = writeln!(text, "credentials = {{ file = {} }}\n", quote(&file));
    }
    std::fs::write(config, text)?;
    Ok(ca_path)
}
