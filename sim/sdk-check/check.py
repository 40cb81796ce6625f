#!/usr/bin/env python3
"""Acceptance check of nija-sim against the brokers' official Python SDKs.

Usage: check.py CONFIG.toml   (a config written by `nija-sim --write-config`)

Needs: coinbase-advanced-py, krakenex, python-kraken-sdk, alpaca-py. Exit status 3 when one of
them is missing (the Rust wrapper reports a skip), 1 on any failed check, 0 when all pass.
It uses the first Coinbase account, the first two Kraken accounts (krakenex and
python-kraken-sdk: their nonce scales differ, so they must not share a key) and the first Alpaca
account; each must hold at least 0.01 BTC, the Alpaca one also 2 AAPL with the market open.
For each SDK: list balances, get a price, sell, look the order up (by id and by client id).
"""

import json
import os
import sys
import time
import tomllib
import uuid
from urllib.parse import urlparse

try:
    import krakenex
    from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
    from alpaca.data.requests import CryptoLatestQuoteRequest, StockLatestQuoteRequest
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest
    from coinbase.rest import RESTClient
    from kraken.spot import Market, Trade, User
except ImportError as missing:  # pragma: no cover - reported by the Rust wrapper
    print(json.dumps({"skipped": f"SDK not installed: {missing}"}))
    sys.exit(3)

results = []


def check(name, condition, detail=""):
    results.append({"check": name, "ok": bool(condition), "detail": str(detail)[:300]})
    if not condition:
        raise AssertionError(f"{name}: {detail}")


def load(config_path):
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    folder = os.path.dirname(os.path.abspath(config_path))
    accounts = []
    for account in config["accounts"]:
        with open(os.path.join(folder, account["credentials"]["file"])) as f:
            account["creds"] = json.load(f)
        accounts.append(account)
    return config, accounts


def coinbase(account, ca):
    host = urlparse(account["base_url"]).netloc
    client = RESTClient(api_key=account["creds"]["name"], api_secret=account["creds"]["privateKey"], base_url=host)
    client.session.verify = ca
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would override `verify`; loopback needs no proxy either.
    client.session.trust_env = False
    accounts = client.get_accounts(limit=250).to_dict()["accounts"]
    btc = [a for a in accounts if a["currency"] == "BTC"]
    check("coinbase get_accounts", btc and float(btc[0]["available_balance"]["value"]) >= 0.01, accounts[:2])
    book = client.get_best_bid_ask(product_ids=["BTC-USD"]).to_dict()["pricebooks"][0]
    check("coinbase best_bid_ask", float(book["bids"][0]["price"]) > 0, book)
    product = client.get_product("BTC-USD").to_dict()
    check("coinbase get_product", product["base_increment"] and product["quote_min_size"], product)
    client_id = str(uuid.uuid4())
    placed = client.market_order_sell(client_order_id=client_id, product_id="BTC-USD", base_size="0.001").to_dict()
    check("coinbase market_order_sell", placed["success"], placed)
    order_id = placed["success_response"]["order_id"]
    again = client.market_order_sell(client_order_id=client_id, product_id="BTC-USD", base_size="0.001").to_dict()
    check("coinbase same client_order_id returns same order", again["success_response"]["order_id"] == order_id, again)
    order = client.get_order(order_id).to_dict()["order"]
    check("coinbase get_order", order["status"] == "FILLED" and order["filled_size"] == "0.001", order)
    fills = client.get_fills(order_ids=[order_id]).to_dict()["fills"]
    check("coinbase get_fills", len(fills) == 1 and fills[0]["size"] == "0.001", fills)
    listed = client.list_orders(order_status=["FILLED"], product_ids=["BTC-USD"]).to_dict()["orders"]
    check("coinbase list_orders", any(o["order_id"] == order_id for o in listed), len(listed))
    after = [a for a in client.get_accounts(limit=250).to_dict()["accounts"] if a["currency"] == "BTC"][0]
    moved = abs(float(btc[0]["available_balance"]["value"]) - float(after["available_balance"]["value"]) - 0.001) < 1e-9
    check("coinbase balance moved once", moved, after)


def kraken_krakenex(account):
    api = krakenex.API(key=account["creds"]["key"], secret=account["creds"]["secret"])
    api.uri = account["base_url"]
    balance = api.query_private("Balance")
    check("krakenex Balance", not balance["error"] and float(balance["result"]["XXBT"]) >= 0.01, balance)
    ticker = api.query_public("Ticker", {"pair": "XBTUSD"})
    check("krakenex Ticker", float(ticker["result"]["XXBTZUSD"]["b"][0]) > 0, ticker)
    client_id = str(uuid.uuid4())
    time.sleep(0.002)
    placed = api.query_private(
        "AddOrder", {"ordertype": "market", "type": "sell", "volume": "0.001", "pair": "XXBTZUSD", "cl_ord_id": client_id}
    )
    check("krakenex AddOrder", not placed["error"] and placed["result"]["txid"], placed)
    txid = placed["result"]["txid"][0]
    time.sleep(0.002)
    queried = api.query_private("QueryOrders", {"txid": txid, "trades": True})
    check("krakenex QueryOrders", queried["result"][txid]["status"] == "closed", queried)
    time.sleep(0.002)
    closed = api.query_private("ClosedOrders", {"cl_ord_id": client_id})
    check("krakenex ClosedOrders by cl_ord_id", list(closed["result"]["closed"]) == [txid], closed)


def kraken_python_sdk(account):
    user = User(key=account["creds"]["key"], secret=account["creds"]["secret"], url=account["base_url"])
    balances = user.get_balances()
    check("python-kraken-sdk get_balances", float(balances["XXBT"]["balance"]) >= 0.01, balances)
    ticker = Market(url=account["base_url"]).get_ticker(pair="XBTUSD")
    check("python-kraken-sdk get_ticker", float(ticker["XXBTZUSD"]["a"][0]) > 0, ticker)
    trade = Trade(key=account["creds"]["key"], secret=account["creds"]["secret"], url=account["base_url"])
    client_id = str(uuid.uuid4())
    placed = trade.create_order(
        ordertype="market", side="sell", pair="XBTUSD", volume="0.001", extra_params={"cl_ord_id": client_id}
    )
    check("python-kraken-sdk create_order", placed["txid"], placed)
    txid = placed["txid"][0]
    info = user.get_orders_info(txid=txid, trades=True)
    check("python-kraken-sdk get_orders_info", info[txid]["vol_exec"] == "0.00100000", info)
    closed = user.get_closed_orders(extra_params={"cl_ord_id": client_id})
    check("python-kraken-sdk get_closed_orders by cl_ord_id", list(closed["closed"]) == [txid], closed)


def alpaca(account):
    key, secret, base = account["creds"]["key_id"], account["creds"]["secret_key"], account["base_url"]
    data_url = account.get("data_url", base)
    trading = TradingClient(key, secret, paper=True, url_override=base)
    check("alpaca get_account", float(trading.get_account().cash) >= 0)
    positions = {p.symbol: p for p in trading.get_all_positions()}
    check("alpaca get_all_positions", "BTCUSD" in positions and "AAPL" in positions, list(positions))
    crypto = CryptoHistoricalDataClient(key, secret, url_override=data_url)
    quote = crypto.get_crypto_latest_quote(CryptoLatestQuoteRequest(symbol_or_symbols="BTC/USD"))["BTC/USD"]
    check("alpaca crypto latest quote", quote.bid_price > 0, quote)
    stocks = StockHistoricalDataClient(key, secret, url_override=data_url)
    stock_quote = stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    check("alpaca stock latest quote", stock_quote.bid_price > 0, stock_quote)
    clock = trading.get_clock()
    check("alpaca clock", clock.is_open, clock)
    client_id = str(uuid.uuid4())
    order = trading.submit_order(
        MarketOrderRequest(symbol="BTC/USD", qty=0.001, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, client_order_id=client_id)
    )
    check("alpaca submit crypto sell", order.client_order_id == client_id, order)
    by_id = trading.get_order_by_id(order.id)
    check("alpaca get_order_by_id", str(by_id.status.value) == "filled" and float(by_id.filled_qty) == 0.001, by_id)
    by_client = trading.get_order_by_client_id(client_id)
    check("alpaca get_order_by_client_id", by_client.id == order.id, by_client)
    try:
        trading.submit_order(
            MarketOrderRequest(symbol="BTC/USD", qty=0.001, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, client_order_id=client_id)
        )
        check("alpaca duplicate client_order_id refused", False, "accepted twice")
    except Exception as refused:  # alpaca-py raises APIError
        check("alpaca duplicate client_order_id refused", "client_order_id must be unique" in str(refused), refused)
    equity = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY, client_order_id=str(uuid.uuid4()))
    )
    check("alpaca submit equity sell", str(trading.get_order_by_id(equity.id).status.value) == "filled", equity)


def main():
    config, accounts = load(sys.argv[1])
    ca = config["tls"]["extra_ca"]
    by_broker = {}
    for account in accounts:
        by_broker.setdefault(account["broker"], []).append(account)
    failed = None
    steps = [
        ("coinbase", lambda: coinbase(by_broker["coinbase"][0], ca)),
        ("krakenex", lambda: kraken_krakenex(by_broker["kraken"][0])),
        ("python-kraken-sdk", lambda: kraken_python_sdk(by_broker["kraken"][1])),
        ("alpaca", lambda: alpaca(by_broker["alpaca"][0])),
    ]
    for name, step in steps:
        try:
            step()
        except Exception as error:  # report every SDK, then fail
            failed = failed or name
            results.append({"check": f"{name} raised", "ok": False, "detail": repr(error)[:500]})
    print(json.dumps({"results": results, "failed": failed}, indent=1))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
