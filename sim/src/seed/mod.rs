//! Turning a scenario (from a file or generated) into a running exchange.

pub mod generate;
pub mod scenario;

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::broker::Broker;
use crate::credentials::{Credentials, Verifier};
use crate::exchange::Exchange;
use crate::exchange::account::{Account, AccountInfo, Book};
use crate::faults::FaultSpec;
use crate::market::Market;
use crate::market::instruments::{
    AssetClass, Catalog, Instrument, default_rules, default_universe,
};
use crate::market::prices::PriceBook;
use scenario::{Scenario, ScenarioError};

/// Builds the exchange a scenario describes. Credentials derive from `seed`.
pub fn build(
    scenario: &Scenario,
    seed: u64,
    spread: Decimal,
    frozen: bool,
) -> Result<Exchange, ScenarioError> {
    let mut universe = default_universe();
    for (symbol, price) in &scenario.prices {
        match universe.iter_mut().find(|(i, _)| &i.symbol == symbol) {
            Some(entry) => entry.1 = *price,
            None => {
                let (base, quote) = symbol.split_once('-').unwrap_or((symbol.as_str(), "USD"));
                let class = scenario
                    .products
                    .iter()
                    .find(|p| &p.symbol == symbol)
                    .and_then(|p| p.class)
                    .unwrap_or(AssetClass::Crypto);
                universe.push((Instrument::new(base, quote, class), *price));
            }
        }
    }
    let prices = Arc::new(PriceBook::new(spread));
    let mut rules = HashMap::new();
    for (instrument, price) in &universe {
        for broker in Broker::ALL {
            if !instrument.listed_at(broker) {
                continue;
            }
            let mut rule = default_rules(broker, instrument, *price);
            for o in scenario
                .products
                .iter()
                .filter(|o| o.symbol == instrument.symbol && o.broker.is_none_or(|b| b == broker))
            {
                rule.step = o.step.unwrap_or(rule.step);
                rule.min_qty = o.min_qty.unwrap_or(rule.min_qty);
                rule.min_notional = o.min_notional.unwrap_or(rule.min_notional);
                rule.price_step = o.price_step.unwrap_or(rule.price_step);
            }
            rules.insert((broker, instrument.symbol.clone()), rule);
        }
        let step = rules
            .get(&(Broker::Coinbase, instrument.symbol.clone()))
            .or_else(|| rules.get(&(Broker::Alpaca, instrument.symbol.clone())))
            .map(|r| r.price_step)
            .unwrap_or(Decimal::new(1, 8));
        prices.list(&instrument.symbol, *price, step, frozen);
    }
    let catalog = Catalog::new(universe.into_iter().map(|(i, _)| i));
    let market = Market::new(catalog, prices, rules, scenario.market_open.unwrap_or(true));

    let mut accounts = Vec::with_capacity(scenario.accounts.len());
    let mut seen = std::collections::HashSet::new();
    for a in &scenario.accounts {
        nija_proto::AccountId::new(a.id.clone())
            .map_err(|e| ScenarioError::Account(a.id.clone(), e.to_string()))?;
        if !seen.insert(a.id.clone()) {
            return Err(ScenarioError::Account(a.id.clone(), "duplicate id".into()));
        }
        let credentials = Credentials::generate(seed, a.broker, &a.id)
            .map_err(|e| ScenarioError::Account(a.id.clone(), e.to_string()))?;
        let verifier = Verifier::for_credentials(&credentials)
            .map_err(|e| ScenarioError::Account(a.id.clone(), e.to_string()))?;
        let mut book = Book::default();
        book.set_holding("USD", a.cash, None);
        for h in &a.holdings {
            let asset = h.asset.strip_suffix("-USD").unwrap_or(&h.asset);
            if market.catalog.by_base(asset).is_none() {
                return Err(ScenarioError::Account(
                    a.id.clone(),
                    format!("holding {asset:?} has no {asset}-USD price: add it under [prices]"),
                ));
            }
            book.set_holding(asset, h.quantity, h.avg_entry);
        }
        let info = AccountInfo {
            id: a.id.clone(),
            kind: a.kind,
            broker: a.broker,
            credentials,
        };
        accounts.push(Account::new(info, verifier, book));
    }
    let fees = scenario.fees.iter().map(|(b, f)| (*b, *f)).collect();
    let exchange = Exchange::new(market, accounts, fees);
    if !scenario.price_failures.is_empty() {
        exchange.faults.set(FaultSpec {
            price_failures: Some(scenario.price_failures.iter().cloned().collect()),
            ..FaultSpec::default()
        });
    }
    Ok(exchange)
}
