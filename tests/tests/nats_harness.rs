//! The harness really starts a JetStream-enabled server and survives a restart with its store.

use nija_e2e::NatsServer;

#[tokio::test]
async fn harness_starts_jetstream_and_restarts_with_state() -> anyhow::Result<()> {
    let mut server = NatsServer::start()?;
    let client = async_nats::connect(server.url()).await?;
    let js = async_nats::jetstream::new(client);
    let kv = js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "harness".into(),
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    kv.put("k", "v".into()).await?;

    server.restart()?;
    let client = async_nats::connect(server.url()).await?;
    let js = async_nats::jetstream::new(client);
    let kv = js.get_key_value("harness").await?;
    let value = kv.get("k").await?;
    assert_eq!(value.as_deref(), Some(&b"v"[..]));
    Ok(())
}
