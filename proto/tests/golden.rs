//! Golden wire tests: the JSON every nija message and KV record travels as, pinned byte for byte.
//!
//! Each message has a fixed value here and a pretty-printed file in `proto/golden/`. The test
//! serialises the value and compares it with the file, and decodes the file back to the value, so
//! any change in field names, types, enum spellings, decimal formatting or the client order id
//! derivation fails here before it reaches a running fleet. A deliberate change bumps the schema
//! version in `proto/src/messages.rs` and rewrites the files with
//! `UPDATE_GOLDEN=1 cargo test -p nija-proto --test golden`.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use nija_proto::control::{
    BlacklistRequest, ControlFlag, EnforceRequest, NormalizeRequest, PauseReply, PauseRequest,
    Reply, StatusReply, TrackRequest,
};
use nija_proto::ids::JobKind;
use nija_proto::messages::{
    DeadLetter, DecodeError, Envelope, FillStatus, Heartbeat, Job, JobError, JobResult, Message,
    ResultStatus, SCHEMA_MAJOR, SchemaVersion, SoldPosition, TriggeredBy, decode, encode,
};
use nija_proto::names::{Partition, job_subject};
use nija_proto::plan::{
    AccountType, DustPosition, FlaggedBlacklisted, GuardRefusal, KeptPosition, Mode, Plan,
    PlannedSell, Reconciliation, ReferenceSource, SellReason, UnpricedPosition, UnsellablePosition,
    UnsellableReason,
};
use nija_proto::state::{
    AdoptionStatus, BlacklistEntry, BlacklistReason, EntryPriceSource, PositionSource,
    TrackedPosition,
};
use nija_proto::{AccountId, ClientOrderId, JobId, Pct, Price, Quantity, Symbol, Usd, WorkerId};
use rust_decimal_macros::dec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The harness

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn golden_path(name: &str) -> PathBuf {
    golden_dir().join(format!("{name}.json"))
}

/// The pretty wire form of a message: what `encode` writes, indented.
fn pretty<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(&Envelope::new(value)).unwrap();
    text.push('\n');
    text
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `value`'s wire form with its golden file and decodes the file back to `value`.
fn check<T>(name: &str, value: &T)
where
    T: Message + DeserializeOwned + PartialEq + Debug,
{
    let path = golden_path(name);
    let written = pretty(value);
    if updating() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, &written).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} is unreadable ({e}); create it deliberately with \
             UPDATE_GOLDEN=1 cargo test -p nija-proto --test golden",
            path.display()
        )
    });
    if written != on_disk {
        let (line, want, got) = first_difference(&on_disk, &written);
        panic!(
            "the wire format of {name} changed (golden file {}), first difference at line {line}:\n  \
             golden: {want}\n  now:    {got}\n\
             Deployed coordinators, workers and CLIs read the old form. If the change is \
             deliberate, bump the schema version in proto/src/messages.rs (SCHEMA_MINOR for a new \
             optional field, SCHEMA_MAJOR for anything a reader of the old form cannot read) and \
             update the golden file with UPDATE_GOLDEN=1 cargo test -p nija-proto --test golden",
            path.display()
        );
    }

    // The file decodes to the same value through the reader every component uses...
    let decoded: T = decode(on_disk.as_bytes())
        .unwrap_or_else(|e| panic!("golden file {} no longer decodes: {e}", path.display()));
    assert_eq!(
        &decoded, value,
        "{name}: decoding the golden file gives another value"
    );
    // ...and the compact form `encode` puts on the wire is the same document.
    let wire: Value = serde_json::from_slice(&encode(value)).unwrap();
    let file: Value = serde_json::from_str(&on_disk).unwrap();
    assert_eq!(wire, file, "{name}: encode() and the golden file differ");
}

/// For request/reply messages between the CLI and the coordinator: the golden file must decode,
/// and encoding the decoded value must give the file back byte for byte. The file is the fixed
/// value, so a field added to these types shows up as a difference, not as a compile error here.
fn round_trip<T>(name: &str)
where
    T: Serialize + DeserializeOwned,
{
    let path = golden_path(name);
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} is unreadable: {e}", path.display()));
    let value: T = decode(on_disk.as_bytes())
        .unwrap_or_else(|e| panic!("golden file {} no longer decodes: {e}", path.display()));
    let written = pretty(&value);
    if updating() {
        std::fs::write(&path, &written).unwrap();
    } else if written != on_disk {
        let (line, want, got) = first_difference(&on_disk, &written);
        panic!(
            "the wire format of {name} changed (golden file {}), first difference at line {line}:\n  \
             golden: {want}\n  now:    {got}\n\
             A CLI and a coordinator of different builds exchange this message. If the change is \
             deliberate, bump the schema version in proto/src/messages.rs and update the golden \
             file with UPDATE_GOLDEN=1 cargo test -p nija-proto --test golden",
            path.display()
        );
    }
}

fn first_difference<'a>(want: &'a str, got: &'a str) -> (usize, &'a str, &'a str) {
    let mut w = want.lines();
    let mut g = got.lines();
    let mut line = 1;
    loop {
        match (w.next(), g.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                return (
                    line,
                    a.unwrap_or("<end of file>"),
                    b.unwrap_or("<end of file>"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed values

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, h, m, s).unwrap()
}

fn account() -> AccountId {
    AccountId::new("user-0001").unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn enforce_job_id() -> JobId {
    // Slot = floor(unix seconds of 12:00:00 / 60 s).
    JobId::scheduled(JobKind::Enforce, &account(), 29_928_240)
}

fn coid(symbol: &str) -> ClientOrderId {
    ClientOrderId::derive(&account(), &enforce_job_id(), &sym(symbol))
}

fn scheduled_job() -> Job {
    Job {
        job_id: enforce_job_id(),
        kind: JobKind::Enforce,
        account: account(),
        partition: Partition::of(&account(), 64),
        scheduled_at: at(12, 0, 0),
        deadline: at(12, 1, 0),
        triggered_by: TriggeredBy::Schedule,
        force: false,
        dry_run: false,
        max_positions: None,
    }
}

fn operator_job() -> Job {
    let request = uuid::Uuid::from_u128(0x1f0e_2d3c_4b5a_6978_8796_a5b4_c3d2_e1f0);
    Job {
        job_id: JobId::requested(JobKind::Normalize, &account(), request),
        kind: JobKind::Normalize,
        account: account(),
        partition: Partition::of(&account(), 64),
        scheduled_at: at(12, 5, 0),
        deadline: at(12, 6, 0),
        triggered_by: TriggeredBy::Operator("alice".into()),
        force: true,
        dry_run: true,
        max_positions: Some(3),
    }
}

fn cap_sell(symbol: &str, quantity: Quantity, price: Price) -> PlannedSell {
    PlannedSell {
        symbol: sym(symbol),
        quantity,
        price,
        usd_value: quantity * price,
        reason: SellReason::Cap,
        fired: vec![],
        client_order_id: coid(symbol),
    }
}

fn kept(symbol: &str, quantity: Quantity, price: Option<Price>) -> KeptPosition {
    KeptPosition {
        symbol: sym(symbol),
        quantity,
        usd_value: price.map(|p| quantity * p),
    }
}

/// An enforce run on a USER account capped at 6 holding 9 material positions: three cap sells
/// (one partially filled, one found already placed by an earlier delivery of the same job), an
/// unsellable and an unpriced position counted but not sold, two dust positions, a flagged
/// blacklisted symbol and a price error.
fn enforced_plan() -> Plan {
    let q = |d| Quantity(d);
    let p = |d| Price(d);
    Plan {
        account: account(),
        job_id: enforce_job_id(),
        kind: JobKind::Enforce,
        decided_at: at(12, 0, 2),
        count_before: 9,
        max_allowed: 6,
        excess: 3,
        sells: vec![
            cap_sell("XLM-USD", q(dec!(300)), p(dec!(0.30))),
            cap_sell("DOGE-USD", q(dec!(2000)), p(dec!(0.10))),
            cap_sell("ADA-USD", q(dec!(1000)), p(dec!(0.50))),
        ],
        kept: vec![
            kept("BTC-USD", q(dec!(0.5)), Some(p(dec!(60000)))),
            kept("ETH-USD", q(dec!(4)), Some(p(dec!(3000)))),
            kept("SOL-USD", q(dec!(20)), Some(p(dec!(150)))),
            kept("BONK-USD", q(dec!(100000000)), Some(p(dec!(0.000015)))),
            kept("FOO-USD", q(dec!(12)), None),
        ],
        dust: vec![
            DustPosition {
                symbol: sym("SHIB-USD"),
                quantity: q(dec!(10000)),
                usd_value: Usd(dec!(0.20)),
                newly_blacklisted: true,
            },
            DustPosition {
                symbol: sym("XRP-USD"),
                quantity: q(dec!(1)),
                usd_value: Usd(dec!(0.50)),
                newly_blacklisted: false,
            },
        ],
        unpriced: vec![UnpricedPosition {
            symbol: sym("FOO-USD"),
            quantity: q(dec!(12)),
            reason: "unknown_symbol".into(),
        }],
        unsellable: vec![UnsellablePosition {
            symbol: sym("LINK-USD"),
            quantity: q(dec!(0.09)),
            usd_value: Usd(dec!(1.35)),
            reason: UnsellableReason::BelowMinimumOrder,
            exit_fired: vec![SellReason::StopLoss, SellReason::MaxHold],
        }],
        flagged: vec![FlaggedBlacklisted {
            symbol: sym("BONK-USD"),
            usd_value: Usd(dec!(1500)),
        }],
        cap_unreachable: false,
        guard_refusal: None,
        guard_overridden: false,
        reconciliation: Some(Reconciliation {
            cash_usd: Usd(dec!(1000.00)),
            positions_usd: Usd(dec!(47292.05)),
            total_usd: Usd(dec!(48292.05)),
            reference_usd: Some(Usd(dec!(48100.00))),
            reference_source: Some(ReferenceSource::PreviousSnapshot),
            drift_pct: Some(Pct(dec!(0.3993))),
            drifted: false,
            unpriced_positions: 1,
        }),
    }
}

fn sold(
    symbol: &str,
    quantity: Quantity,
    filled: Quantity,
    usd_value: Usd,
    fill: Option<Price>,
    status: FillStatus,
    already_placed: bool,
) -> SoldPosition {
    SoldPosition {
        symbol: sym(symbol),
        reason: SellReason::Cap,
        fired: vec![],
        quantity,
        filled_quantity: filled,
        remainder: quantity - filled,
        usd_value,
        average_fill_price: fill,
        order_id: Some(format!("ord-{}", symbol.to_lowercase())),
        client_order_id: coid(symbol),
        fill_status: status,
        already_placed,
    }
}

fn enforced_result() -> JobResult {
    JobResult {
        job_id: enforce_job_id(),
        kind: JobKind::Enforce,
        account: account(),
        account_type: AccountType::User,
        worker: WorkerId::new("worker-7f9c").unwrap(),
        status: ResultStatus::Partial,
        triggered_by: TriggeredBy::Schedule,
        mode: Mode::Act,
        dry_run: false,
        forced: false,
        started_at: at(12, 0, 1),
        finished_at: at(12, 0, 9),
        count_before: Some(9),
        count_after: Some(7),
        max_allowed: 6,
        excess: 3,
        sold: vec![
            sold(
                "XLM-USD",
                Quantity(dec!(300)),
                Quantity(dec!(300)),
                Usd(dec!(90.00)),
                Some(Price(dec!(0.2998))),
                FillStatus::Filled,
                false,
            ),
            sold(
                "DOGE-USD",
                Quantity(dec!(2000)),
                Quantity(dec!(1500)),
                Usd(dec!(200.00)),
                Some(Price(dec!(0.0999))),
                FillStatus::PartiallyFilled,
                false,
            ),
            sold(
                "ADA-USD",
                Quantity(dec!(1000)),
                Quantity(dec!(1000)),
                Usd(dec!(500.00)),
                Some(Price(dec!(0.5001))),
                FillStatus::Filled,
                true,
            ),
        ],
        plan: Some(enforced_plan()),
        errors: vec![
            JobError {
                class: "price".into(),
                message: "Price fetch failed: unknown asset pair FOO-USD".into(),
                symbol: Some(sym("FOO-USD")),
            },
            JobError {
                class: "order".into(),
                message: "DOGE-USD partially filled (1500 of 2000) by the deadline; \
                          remainder 500 not re-sold"
                    .into(),
                symbol: Some(sym("DOGE-USD")),
            },
        ],
    }
}

/// An operator's forced exit sweep in observe mode whose snapshot failed: no counts, no plan.
fn failed_result() -> JobResult {
    // Slot = floor(unix seconds of 12:00:00 / 10 s).
    JobResult {
        job_id: JobId::scheduled(JobKind::ExitSweep, &account(), 179_569_440),
        kind: JobKind::ExitSweep,
        account: account(),
        account_type: AccountType::Platform,
        worker: WorkerId::new("worker-7f9c").unwrap(),
        status: ResultStatus::Failed,
        triggered_by: TriggeredBy::Operator("alice".into()),
        mode: Mode::Observe,
        dry_run: false,
        forced: true,
        started_at: at(12, 0, 0),
        finished_at: at(12, 0, 10),
        count_before: None,
        count_after: None,
        max_allowed: 8,
        excess: 0,
        sold: vec![],
        plan: None,
        errors: vec![JobError {
            class: "snapshot".into(),
            message: "balances request timed out after 10s; nothing was planned or sold".into(),
            symbol: None,
        }],
    }
}

/// A cap plan the liquidation guard refused.
fn refused_plan() -> Plan {
    let refused = cap_sell("ETH-USD", Quantity(dec!(4)), Price(dec!(3000)));
    Plan {
        account: account(),
        job_id: enforce_job_id(),
        kind: JobKind::Enforce,
        decided_at: at(12, 0, 2),
        count_before: 3,
        max_allowed: 2,
        excess: 1,
        sells: vec![],
        kept: vec![
            kept("BTC-USD", Quantity(dec!(0.2)), Some(Price(dec!(60000)))),
            kept("SOL-USD", Quantity(dec!(100)), Some(Price(dec!(150)))),
        ],
        dust: vec![],
        unpriced: vec![],
        unsellable: vec![],
        flagged: vec![],
        cap_unreachable: false,
        guard_refusal: Some(GuardRefusal {
            planned_usd: Usd(dec!(12000)),
            window_sold_usd: Usd(dec!(9000)),
            material_usd: Usd(dec!(39000)),
            allowed_usd: Usd(dec!(19500.0)),
            refused_sells: vec![refused],
        }),
        guard_overridden: false,
        reconciliation: None,
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        worker: WorkerId::new("worker-7f9c").unwrap(),
        version: "0.1.0".into(),
        started_at: at(11, 0, 0),
        sent_at: at(12, 0, 5),
        partitions: vec![Partition(3), Partition(17), Partition(42)],
        leased_accounts: vec![account(), AccountId::new("platform").unwrap()],
        jobs_in_flight: 2,
        last_job_finished_at: Some(at(12, 0, 4)),
        draining: false,
    }
}

fn dead_letter() -> DeadLetter {
    let raw = r#"{"schema":"2.0","job_id":"enforce-user-0001-29928240"}"#;
    DeadLetter {
        subject: job_subject(Partition(3), JobKind::Enforce, &account()),
        // A literal: the golden pins the record's shape, not the wording of `DecodeError`.
        error: "unsupported schema version 2.0 (this build reads 1.x)".into(),
        raw: raw.into(),
        worker: Some(WorkerId::new("worker-7f9c").unwrap()),
        received_at: at(12, 0, 3),
    }
}

fn blacklist_entry() -> BlacklistEntry {
    BlacklistEntry {
        account: account(),
        symbol: sym("SHIB-USD"),
        usd_value: Usd(dec!(0.20)),
        reason: BlacklistReason::Dust,
        added_at: at(12, 0, 2),
        added_by: None,
    }
}

fn tracked_position() -> TrackedPosition {
    TrackedPosition {
        account: account(),
        symbol: sym("BRK.B-USD"),
        quantity: Quantity(dec!(3)),
        entry_price: Price(dec!(412.35)),
        entry_price_source: EntryPriceSource::AdoptionPrice,
        entry_time: at(9, 30, 0),
        peak: Price(dec!(420.10)),
        source: PositionSource::BrokerExisting,
        adoption_status: AdoptionStatus::Adopted,
        tracked: true,
        closed_at: None,
    }
}

fn pause_flag() -> ControlFlag {
    ControlFlag {
        by: "alice".into(),
        at: at(12, 0, 0),
    }
}

/// Checks one golden file (named by the argument) against its fixed value, or round-trips it.
type Check = fn(&str);

/// Every golden file, by name, with a check of its value.
const GOLDEN: &[(&str, Check)] = &[
    ("job", |n| check(n, &scheduled_job())),
    ("job_operator", |n| check(n, &operator_job())),
    ("job_result", |n| check(n, &enforced_result())),
    ("job_result_failed", |n| check(n, &failed_result())),
    ("plan_refused_by_guard", |n| check(n, &refused_plan())),
    ("heartbeat", |n| check(n, &heartbeat())),
    ("dead_letter", |n| check(n, &dead_letter())),
    ("blacklist_entry", |n| check(n, &blacklist_entry())),
    ("tracked_position", |n| check(n, &tracked_position())),
    ("control_flag", |n| check(n, &pause_flag())),
    ("control_enforce_request", round_trip::<EnforceRequest>),
    ("control_normalize_request", round_trip::<NormalizeRequest>),
    ("control_pause_request", round_trip::<PauseRequest>),
    ("control_blacklist_request", round_trip::<BlacklistRequest>),
    ("control_track_request", round_trip::<TrackRequest>),
    ("control_reply_error", round_trip::<Reply<PauseReply>>),
    ("control_status_reply", round_trip::<Reply<StatusReply>>),
];

// ---------------------------------------------------------------------------------------------
// The wire format is pinned

/// The only test that touches the files (so that `UPDATE_GOLDEN=1` never races a reader).
#[test]
fn every_message_matches_its_golden_file() {
    for (name, check) in GOLDEN {
        check(name);
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = GOLDEN.iter().map(|(n, _)| format!("{n}.json")).collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "proto/golden holds files no test checks, or misses some"
    );
}

#[test]
fn messages_carry_the_current_schema() {
    let doc = doc(&scheduled_job());
    assert_eq!(
        doc["schema"],
        Value::String(format!("{SCHEMA_MAJOR}.{}", SchemaVersion::CURRENT.minor))
    );
}

// ---------------------------------------------------------------------------------------------
// Versions

/// A message as a JSON document, to be altered the way another writer would.
fn doc<T: Message>(value: &T) -> Value {
    serde_json::from_slice(&encode(value)).unwrap()
}

fn with_schema(mut doc: Value, schema: &str) -> Vec<u8> {
    doc["schema"] = Value::String(schema.into());
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn another_major_version_is_refused_as_unsupported() {
    for schema in ["2.0", "0.9", "17.3"] {
        let bytes = with_schema(doc(&scheduled_job()), schema);
        match decode::<Job>(&bytes) {
            Err(DecodeError::UnsupportedVersion { found, supported }) => {
                assert_eq!(found.to_string(), schema);
                assert_eq!(supported, SCHEMA_MAJOR);
            }
            other => panic!("{schema}: {other:?}"),
        }
    }
    // Every message kind checks the version first, before its body.
    let bytes = with_schema(doc(&enforced_result()), "2.0");
    assert!(matches!(
        decode::<JobResult>(&bytes),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    let bytes = with_schema(doc(&heartbeat()), "2.0");
    assert!(matches!(
        decode::<Heartbeat>(&bytes),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    let bytes = with_schema(doc(&dead_letter()), "2.0");
    assert!(matches!(
        decode::<DeadLetter>(&bytes),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
}

#[test]
fn a_message_without_schema_is_refused_as_missing_version() {
    let docs = [
        doc(&scheduled_job()),
        doc(&enforced_result()),
        doc(&heartbeat()),
        doc(&dead_letter()),
    ];
    for mut doc in docs {
        doc.as_object_mut().unwrap().remove("schema");
        let bytes = serde_json::to_vec(&doc).unwrap();
        let err = decode::<Job>(&bytes).unwrap_err();
        assert!(matches!(err, DecodeError::MissingVersion), "{doc}: {err:?}");
    }
}

#[test]
fn a_malformed_version_is_refused_as_bad_version() {
    for schema in ["1", "one.zero", "1.0.0", ""] {
        let bytes = with_schema(doc(&scheduled_job()), schema);
        let err = decode::<Job>(&bytes).unwrap_err();
        assert!(
            matches!(err, DecodeError::BadVersion(_)),
            "{schema:?}: {err:?}"
        );
    }
}

#[test]
fn garbage_is_refused_as_json() {
    let cases: [&[u8]; 6] = [
        b"",
        b"\x00\xffgarbage",
        b"{",
        b"[1, 2, 3]",
        br#"{"schema": 1.0}"#,
        b"null",
    ];
    for bytes in cases {
        let err = decode::<Job>(bytes).unwrap_err();
        assert!(
            matches!(err, DecodeError::Json(_)),
            "{:?}: {err:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn a_message_of_another_kind_is_refused_as_json() {
    let err = decode::<Job>(&encode(&heartbeat())).unwrap_err();
    assert!(matches!(err, DecodeError::Json(_)), "{err:?}");
    let bytes = encode(&scheduled_job());
    assert!(matches!(
        decode::<JobResult>(&bytes),
        Err(DecodeError::Json(_))
    ));
}

#[test]
fn a_newer_minor_version_with_unknown_fields_still_decodes() {
    // A writer one minor version ahead adds optional fields, at the top and nested.
    let mut result = doc(&enforced_result());
    result["retry_of"] = Value::String("enforce-user-0001-29928239".into());
    result["plan"]["risk_score"] = serde_json::json!({"value": "0.7"});
    result["sold"][0]["venue"] = Value::String("kraken".into());
    let bytes = with_schema(result, &format!("{SCHEMA_MAJOR}.99"));
    assert_eq!(decode::<JobResult>(&bytes).unwrap(), enforced_result());

    let mut job = doc(&scheduled_job());
    job["priority"] = Value::from(5);
    let bytes = with_schema(job, &format!("{SCHEMA_MAJOR}.1"));
    assert_eq!(decode::<Job>(&bytes).unwrap(), scheduled_job());

    let mut beat = doc(&heartbeat());
    beat["load"] = serde_json::json!([0.5, 0.25]);
    let bytes = with_schema(beat, &format!("{SCHEMA_MAJOR}.3"));
    assert_eq!(decode::<Heartbeat>(&bytes).unwrap(), heartbeat());
}

#[test]
fn fields_an_older_minor_version_omits_take_their_defaults() {
    // `force`, `dry_run` and `max_positions` may be absent from a job (they default off).
    let mut job = doc(&scheduled_job());
    let obj = job.as_object_mut().unwrap();
    obj.remove("force");
    obj.remove("dry_run");
    let bytes = serde_json::to_vec(&job).unwrap();
    assert_eq!(decode::<Job>(&bytes).unwrap(), scheduled_job());
}
