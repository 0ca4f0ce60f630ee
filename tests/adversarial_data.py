"""A small, nasty data directory written from SPEC.md alone, for an end-to-end test.

A helper wrote it (twenty-eighth session) together with a blind implementation of the contract,
without reading this project, so its cases are the ones a stranger to our code thinks of: every
rule in every log, rule-order interplay (a duplicate whose other copy is late, a conflict whose
copies are also invalid, copies across arrival days, files and event dates, respelt numbers and
instants, extra fields, key order, escapes), bounds on both sides, malformed lines of many kinds,
blank lines, CRLF, gzip, empty files and folders, unicode ids, and copies just outside the run's
event dates. Each emitted copy is described by a manifest row (``log``, ``event_id``, ``dt``: the
arrival day, ``expect``: a quarantine reason, ``ACCEPT``, ``DUP_DROPPED`` or ``OUTSIDE``, ``tags``:
``AMBIG:…`` marks a case whose outcome depends on reading the SPEC where it is silent, ``file``,
``raw``). Written for a run over START..END (arrival days START..END+3); per-line Python on purpose,
a few thousand lines.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import random
from pathlib import Path

D = dt.date
START, END = D(2025, 3, 10), D(2025, 3, 14)
EV_LO, EV_HI = D(2025, 3, 6), D(2025, 3, 18)

COUNTRIES = [  # country,country_name,region,currency
    ("US", "United States", "North America", "USD"),
    ("GB", "United Kingdom", "Europe", "GBP"),
    ("DE", "Germany", "Europe", "EUR"),
    ("FR", "France", "Europe", "EUR"),
    ("JP", "Japan", "APAC", "JPY"),
    ("BR", "Brazil", "LATAM", "BRL"),
    ("VN", "Viet Nam", "APAC", "VND"),
    ("CI", "Côte d'Ivoire", "Africa", "XOF"),
]
FX = {
    "USD": "1",
    "EUR": "1.0842317",
    "GBP": "1.27125",
    "JPY": "0.0067431",
    "BRL": "0.17391",
    "VND": "0.00003921",
    "XOF": "0.0016529",
    "SEK": "0.0951",
}
FX_MISSING = {(D(2025, 3, 12), "BRL")}  # BRL has no rate on 2025-03-12
FX_DATES = [D(2025, 3, 1) + dt.timedelta(days=i) for i in range(25)]
STORE_FEES = [("ios", "0.30"), ("android", "0.15"), ("huawei", "0.10")]  # no 'web'!
GIFTS = [("rose", 1), ("heart", 5), ("galaxy", 1000), ("lion", 29999), ("universe", 34999)]
CATEGORIES = [("beauty", "0.05"), ("fashion", "0.08"), ("electronics", "0.03"), ("home", "0.065")]
CREATOR_USD_PER_COIN = "0.005"

CUR_OK = ["USD", "EUR", "GBP", "JPY", "BRL", "VND", "XOF", "SEK"]


class Num:
    """A JSON number emitted verbatim (so we control its spelling)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def dumps(obj, rng, ascii_=None, sep=None):
    """Own serializer: Num verbatim, random spacing / unicode escaping."""
    if ascii_ is None:
        ascii_ = rng.random() < 0.3
    if sep is None:
        sep = rng.choice([(", ", ": "), (",", ":"), (" , ", " : ")])

    def enc(v):
        if isinstance(v, Num):
            return v.text
        if isinstance(v, dict):
            return "{" + sep[0].join(json.dumps(k, ensure_ascii=ascii_) + sep[1] + enc(x) for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + sep[0].join(enc(x) for x in v) + "]"
        return json.dumps(v, ensure_ascii=ascii_)

    return enc(obj)


def respell(text, rng):
    """Another spelling of the same JSON number value."""
    from decimal import Decimal

    d = Decimal(text)
    opts = []
    if d == d.to_integral_value():
        i = int(d)
        opts += [f"{i}.0", f"{i}e0", f"{i}.000", f"{i * 10}e-1", f"{i}E+0"]
    else:
        s = format(d, "f")
        opts += [s + "0", s + "000", f"{d * 10}e-1", f"{d * 100}E-2"]
    return rng.choice([o for o in opts if o != text])


def fmt_time(t, style, frac_digits=None):
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if style == "Z":
        return base + "Z"
    if style == "msZ":
        return f"{base}.{t.microsecond // 1000:03d}Z"
    if style == "usZ":
        return f"{base}.{t.microsecond:06d}Z"
    if style == "+00":
        return base + "+00:00"
    if style == "ms+00":
        return f"{base}.{t.microsecond // 1000:03d}+00:00"
    raise ValueError(style)


def time_respell(s, rng):
    """Same instant, different spelling."""
    body = s[:-1] if s.endswith("Z") else s[:-6]
    if "." in body:
        main, frac = body.split(".")
        frac_opts = [frac + "0", frac + "000"]
        if frac.rstrip("0") == "":
            frac_opts.append(None)
    else:
        main, frac_opts = body, ["000", "0", "000000"]
    f = rng.choice(frac_opts)
    b = main + ("." + f if f else "")
    out = b + rng.choice(["Z", "+00:00"])
    if out == s:
        out = b + ("+00:00" if s.endswith("Z") else "Z")
    return out


class Gen:
    def __init__(self, seed, ambiguous=True):
        self.rng = random.Random(seed)
        self.ambiguous = ambiguous
        self.copies = []  # dicts: log, dt, line(bytes or str), expect, tags, slot, eid
        self.counter = 0
        self.ws_done = set()

    # ------------------------------------------------------------ ids / base
    def new_id(self, log):
        self.counter += 1
        r = self.rng.random()
        pfx = {"impressions": "imp", "coin_purchases": "cp", "gifts": "gf", "orders": "ord", "fund_payouts": "fp"}[log]
        if r < 0.05:
            return f"{pfx}-ü-{self.counter:05d}"
        if r < 0.08:
            return f"ид-{pfx}-{self.counter:05d}"
        if r < 0.10:
            return f"🎁{pfx}{self.counter:05d}"
        if r < 0.11:
            return f"{pfx} {self.counter:05d} "  # spaces inside the id
        return f"{pfx}-{self.counter:05d}"

    def money(self, lo, hi, places=2):
        v = self.rng.uniform(lo, hi)
        text = f"{v:.{places}f}"
        r = self.rng.random()
        if r < 0.08:
            text = str(round(v)) if round(v) > 0 else text
        elif r < 0.12:
            text = f"{round(v * 100)}e-2" if round(v * 100) > 0 else text
        return Num(text)

    def time_on(self, d, style=None):
        t = dt.datetime(d.year, d.month, d.day) + dt.timedelta(microseconds=self.rng.randrange(86400 * 10**6))
        r = self.rng.random()
        if r < 0.04:
            t = dt.datetime(d.year, d.month, d.day, 0, 0, 0)  # midnight edge
        elif r < 0.08:
            t = dt.datetime(d.year, d.month, d.day, 23, 59, 59, 999000)
        style = style or self.rng.choice(["Z", "msZ", "msZ", "usZ", "+00", "ms+00"])
        return fmt_time(t, style)

    def country(self):
        return self.rng.choices([c[0] for c in COUNTRIES], weights=[5, 3, 3, 2, 2, 3, 1, 1])[0]

    def currency_for(self, country):
        if self.rng.random() < 0.75:
            return dict((c[0], c[3]) for c in COUNTRIES)[country]
        return self.rng.choice(CUR_OK)

    def base(self, log, d, eid=None):
        rng = self.rng
        eid = eid or self.new_id(log)
        c = self.country()
        e = {"event_id": eid, "event_time": self.time_on(d)}
        if log == "impressions":
            pm = rng.choice(["cpm", "cpc"])
            e.update(
                user_id=f"u{rng.randrange(10**6)}",
                country=c,
                ad_format=rng.choice(["in_feed", "topview", "branded_hashtag_challenge"]),
                advertiser_id=f"adv{rng.randrange(50)}",
                campaign_id=f"cmp{rng.randrange(200)}",
                pricing_model=pm,
                price=self.money(1.5, 25.0, 3) if pm == "cpm" else self.money(0.05, 3.0, 4),
                currency=self.currency_for(c),
                clicked=rng.random() < 0.3,
            )
        elif log == "coin_purchases":
            coins = rng.choice([70, 350, 1400, 7000])
            e.update(
                user_id=f"u{rng.randrange(10**6)}",
                user_age=Num(str(rng.randint(18, 70))),
                country=c,
                platform=rng.choice(["ios", "android"]),
                coins=Num(str(coins)),
                amount=self.money(coins * 0.009, coins * 0.016),
                currency=self.currency_for(c),
            )
        elif log == "gifts":
            g, coins = rng.choice(GIFTS)
            if rng.random() < 0.2:
                coins *= rng.randint(2, 10)  # combo: event coins != catalog coins
            e.update(
                user_id=f"u{rng.randrange(10**6)}",
                user_age=Num(str(rng.randint(18, 70))),
                country=c,
                creator_id=f"cr{rng.randrange(500)}",
                live_id=f"live{rng.randrange(10**5)}",
                gift_type=g,
                coins=Num(str(coins)),
            )
        elif log == "orders":
            aff = rng.random() < 0.5
            e.update(
                order_id=f"o{rng.randrange(10**7)}",
                event_type=rng.choices(["placed", "refunded"], [4, 1])[0],
                buyer_id=f"b{rng.randrange(10**5)}",
                seller_id=f"s{rng.randrange(10**3)}",
                country=c,
                category=rng.choice([x[0] for x in CATEGORIES]),
                channel=rng.choice(["live", "video", "shop_tab"]),
                amount=self.money(3, 400),
                currency=self.currency_for(c),
                affiliate_creator_id=f"cr{rng.randrange(500)}" if aff else None,
                affiliate_rate=Num(rng.choice(["0.1", "0.15", "0.2", "0.05", "0.125"]))
                if aff
                else Num(rng.choice(["0", "0.0"])),
            )
        elif log == "fund_payouts":
            e.update(
                creator_id=f"cr{rng.randrange(500)}",
                country=c,
                qualified_views=Num(str(rng.randrange(1000, 10**7))),
                amount=self.money(1, 900),
                currency=self.currency_for(c),
            )
        if rng.random() < 0.1:  # extra fields are ignored
            e["_extra"] = rng.choice([1, "x", None, [1, 2], {"k": "v"}])
        if rng.random() < 0.15:  # key order shuffled
            items = list(e.items())
            rng.shuffle(items)
            e = dict(items)
        return e

    def emit(self, log, arrival, e, expect, tags=(), slot=None, text=None, eid=None):
        line = text if text is not None else dumps(e, self.rng)
        if eid is None and isinstance(e, dict):
            eid = e.get("event_id") if isinstance(e.get("event_id"), str) else ""
        self.copies.append(
            {
                "log": log,
                "dt": arrival,
                "line": line,
                "expect": expect,
                "tags": list(tags),
                "slot": slot,
                "eid": eid or "",
            }
        )

    def delay(self):
        return self.rng.choices([0, 1, 2, 3], [5, 3, 2, 1])[0]

    def edate(self):
        return EV_LO + dt.timedelta(days=self.rng.randrange((EV_HI - EV_LO).days + 1))

    # ------------------------------------------------------------ mutations
    # each returns the first-rule reason the mutation causes
    def mut_schema(self, log, e):
        rng = self.rng
        req = [k for k in SCHEMA_FIELDS[log] if k != "affiliate_creator_id"]
        kind = rng.choice(
            [
                "missing",
                "null",
                "str_for_num",
                "num_for_str",
                "bool_for_num",
                "fraction_int",
                "clicked",
                "empty_id",
                "id_number",
                "bad_time",
                "aff_number",
                "obj_for_str",
            ]
        )
        if kind == "missing":
            del e[rng.choice(req)]
        elif kind == "null":
            e[rng.choice(req)] = None
        elif kind == "str_for_num":
            f = rng.choice(NUM_FIELDS[log] + INT_FIELDS[log])
            e[f] = str(e[f].text)
        elif kind == "bool_for_num":
            e[rng.choice(NUM_FIELDS[log] + INT_FIELDS[log])] = rng.choice([True, False])
        elif kind == "num_for_str":
            f = rng.choice(["country", "currency"] if "currency" in e else ["country"])
            e[f] = Num("840")
        elif kind == "obj_for_str":
            e["country"] = rng.choice([["US"], {"code": "US"}])
        elif kind == "fraction_int" and INT_FIELDS[log]:
            e[rng.choice(INT_FIELDS[log])] = Num(rng.choice(["5.5", "18.25", "1e-1", "70.01"]))
        elif kind == "clicked" and log == "impressions":
            e["clicked"] = rng.choice([Num("1"), Num("0"), "true", "false", None])
        elif kind == "empty_id":
            e["event_id"] = ""
        elif kind == "id_number":
            e["event_id"] = Num(str(rng.randrange(10**6)))
        elif kind == "aff_number" and log == "orders":
            e["affiliate_creator_id"] = Num("12345")
        else:
            t = e["event_time"]
            day = t[:10]
            e["event_time"] = rng.choice(
                [
                    day + " 10:00:00Z",
                    day + "T10:00:00",
                    day + "T10:00:00+01:00",
                    day + "T10:00:00-00:00",
                    day + "T10:00:00-05:00",
                    "2025-03-32T10:00:00Z",
                    day + "T25:00:00Z",
                    day + "T10:00:00.Z",
                    "",
                    day,
                    "not a time",
                    day + "T10:61:00Z",
                    "2025-02-29T10:00:00Z",
                    day + "T10:00:00+0000",
                    Num("1741600800"),
                    day.replace("-", "") + "T100000Z",
                ]
            )
        return "schema_violation"

    def mut_invalid(self, log, e):
        rng = self.rng
        opts = []
        if log == "impressions":
            opts = [
                ("ad_format", rng.choice(["In_Feed", "TOPVIEW", "banner", ""])),
                ("pricing_model", rng.choice(["CPM", "Cpc", "cpa", ""])),
                ("price", Num(rng.choice(["0", "-1.5", "0.0", "-0"]))),
            ]
        elif log == "coin_purchases":
            opts = [
                ("platform", rng.choice(["iOS", "ANDROID", "huawei", "Web"])),
                ("coins", Num(rng.choice(["0", "-70"]))),
                ("amount", Num(rng.choice(["0", "-4.99", "0.00"]))),
                ("user_age", Num(rng.choice(["-1", "131", "200"]))),
            ]
        elif log == "gifts":
            opts = [("coins", Num(rng.choice(["0", "-1"]))), ("user_age", Num(rng.choice(["-1", "131"])))]
        elif log == "orders":
            opts = [
                ("event_type", rng.choice(["Placed", "REFUNDED", "cancelled", "refund"])),
                ("channel", rng.choice(["Live", "feed", "SHOP_TAB"])),
                ("amount", Num(rng.choice(["0", "-12.5"]))),
                ("affiliate_rate", Num(rng.choice(["1", "1.0", "1.5", "-0.1", "-0.0001"]))),
            ]
        elif log == "fund_payouts":
            opts = [("qualified_views", Num("-1")), ("amount", Num(rng.choice(["0", "-100"])))]
        f, v = rng.choice(opts)
        e[f] = v
        return "invalid_value"

    def mut_unknown(self, log, e):
        rng = self.rng
        opts = [("country", rng.choice(["XX", "us", "", "USA", "ZZ"]))]
        if log == "coin_purchases":
            opts.append(("platform", "web"))  # in the enum, not in store_fees
        if log == "gifts":
            opts.append(("gift_type", rng.choice(["Rose", "dragon", ""])))
        if log == "orders":
            opts.append(("category", rng.choice(["toys", "Beauty", ""])))
        f, v = rng.choice(opts)
        e[f] = v
        return "unknown_reference"

    def mut_fx(self, log, e):
        if log == "gifts":
            return None
        rng = self.rng
        e["currency"] = rng.choice(["CHF", "usd", "XXX", ""])
        return "missing_fx_rate"

    def mut_underage(self, log, e):
        if log not in ("coin_purchases", "gifts"):
            return None
        e["user_age"] = Num(self.rng.choice(["17", "0", "12", "17"]))
        return "underage"

    # ------------------------------------------------------------ scenarios
    def single(self, log):
        """One copy, possibly with one or two mutations; expect first rule."""
        rng = self.rng
        d = self.edate()
        e = self.base(log, d)
        muts = []
        r = rng.random()
        if r < 0.45:
            pass
        else:
            pool = [self.mut_schema, self.mut_invalid, self.mut_unknown, self.mut_fx, self.mut_underage]
            k = 1 if rng.random() < 0.7 else 2
            muts = rng.sample(pool, k)
        order = [
            "schema_violation",
            "future_event",
            "late_arrival",
            "invalid_value",
            "unknown_reference",
            "missing_fx_rate",
            "underage",
        ]
        reasons = []
        touched = set()
        miss = object()
        for m in muts:
            # apply on a copy; skip a mutation that touches a field an earlier
            # mutation already changed (it would mask the earlier one)
            e_try = dict(e)
            rr = m(log, e_try)
            changed = {k for k in set(e) | set(e_try) if e.get(k, miss) is not e_try.get(k, miss)}
            if not rr or changed & touched:
                continue
            touched |= changed
            e = e_try
            reasons.append(rr)
        # boundary-valid values
        if not reasons and rng.random() < 0.15:
            reasons += self.boundary_valid(log, e, d)
        # arrival
        rd = rng.random()
        if rd < 0.07:
            delay = rng.choice([-1, -2, -5])
            reasons.append("future_event")
        elif rd < 0.15:
            delay = rng.choice([4, 5, 7])
            reasons.append("late_arrival")
        else:
            delay = self.delay()
        # underage when age invalid: invalid wins anyway (order); gifts fx none
        reasons = [x for x in reasons if x]
        expect = min(reasons, key=order.index) if reasons else "ACCEPT"
        # fx: a valid-looking currency may still miss its rate (BRL on 03-12)
        if expect in ("ACCEPT", "underage") and log != "gifts" and (d, e.get("currency")) in FX_MISSING:
            expect = "missing_fx_rate"
        tags = []
        if expect == "ACCEPT" and (d, e.get("currency")) in FX_MISSING:
            pass
        self.emit(log, d + dt.timedelta(days=delay), e, expect, tags)

    def boundary_valid(self, log, e, d):
        rng = self.rng
        if log == "coin_purchases":
            e["user_age"] = Num(rng.choice(["18", "130"]))
        elif log == "gifts":
            e["user_age"] = Num(rng.choice(["18", "130"]))
            e["coins"] = Num("1")
        elif log == "orders":
            e["affiliate_rate"] = Num(rng.choice(["0", "0.999999", "0E-3"]))
            if rng.random() < 0.5:
                e["affiliate_creator_id"] = rng.choice(["", "crédit-✓", None])
        elif log == "fund_payouts":
            e["qualified_views"] = Num("0")
        elif log == "impressions":
            e["price"] = Num(rng.choice(["0.000001", "1e-3", "1E2"]))
        return []

    def dup_scenario(self, log):
        rng = self.rng
        kind = rng.choice(
            [
                "exact_same_file",
                "identical_diff_files",
                "identical_diff_days",
                "extra_field",
                "key_order",
                "unicode_escape",
                "num_respell",
                "time_respell",
                "conflict_value",
                "conflict_invalid",
                "one_late",
                "one_future",
                "conflict_one_late",
                "conflict_schema_copy",
                "cross_date_conflict",
                "three_copies_2_1",
                "conflict_malformed_copy",
                "in_window_outside_range_conflict",
                "identical_fail_later",
                "cross_window_conflict_hi",
                "cross_window_conflict_lo",
                "int_respell",
                "aff_null_vs_missing",
                "conflict_on_clicked",
                "conflict_enum_case",
                "same_id_other_log",
            ]
        )
        d = rng.choice([START + dt.timedelta(days=i) for i in range(5)] + [self.edate()])
        e = self.base(log, d)
        eid = e["event_id"]
        fx_bad = log != "gifts" and (d, e["currency"]) in FX_MISSING
        ok = "missing_fx_rate" if fx_bad else "ACCEPT"
        a0 = d + dt.timedelta(days=self.delay())
        tags = ["dup:" + kind]

        def line(x=None):
            return dumps(x if x is not None else e, rng)

        def other_day():
            return d + dt.timedelta(days=rng.randrange(0, 4))

        if kind == "exact_same_file":
            t = line()
            slot = rng.randrange(3)
            self.emit(log, a0, e, ok, tags, slot, text=t)
            for _ in range(rng.randint(1, 3)):
                self.emit(log, a0, e, "DUP_DROPPED", tags, slot, text=t)
        elif kind == "identical_diff_files":
            t = line()
            self.emit(log, a0, e, ok, tags, 0, text=t)
            self.emit(log, a0, e, "DUP_DROPPED", tags, 1, text=t)
        elif kind == "identical_diff_days":
            self.emit(log, d, e, ok, tags)
            self.emit(log, d + dt.timedelta(days=rng.randint(1, 3)), e, "DUP_DROPPED", tags)
        elif kind in ("extra_field", "key_order", "unicode_escape"):
            e2 = dict(e)
            if kind == "extra_field":
                e2["debug_source"] = rng.choice(["retry", "backfill", None, 7])
                e2.pop("_extra", None) if rng.random() < 0.5 else None
                t2 = dumps(e2, rng)
            elif kind == "key_order":
                items = list(e2.items())
                rng.shuffle(items)
                t2 = dumps(dict(items), rng)
            else:
                e2["event_id"] = eid  # same value, forced \\u escaping
                t2 = dumps(e2, rng, ascii_=True)
            self.emit(log, a0, e, ok, tags, text=dumps(e, rng, ascii_=False))
            self.emit(log, other_day(), e2, "DUP_DROPPED", tags, text=t2)
        elif kind in ("num_respell", "int_respell"):
            fields = NUM_FIELDS[log] if kind == "num_respell" else INT_FIELDS[log]
            if not fields:
                fields = INT_FIELDS[log] or NUM_FIELDS[log]
                kind = "int_respell" if INT_FIELDS[log] else "num_respell"
            f = rng.choice(fields)
            e2 = dict(e)
            e2[f] = Num(respell(e[f].text, rng))
            tg = tags + (
                ["AMBIG:int_field_integral_fraction"] if f in INT_FIELDS[log] else ["INTERP:number_value_equality"]
            )
            if f in INT_FIELDS[log] and not self.ambiguous:
                return
            self.emit(log, a0, e, ok, tg)
            self.emit(log, other_day(), e2, "DUP_DROPPED", tg)
        elif kind == "time_respell":
            e2 = dict(e)
            e2["event_time"] = time_respell(e["event_time"], rng)
            tg = tags + ["INTERP:time_instant_equality"]
            self.emit(log, a0, e, ok, tg)
            self.emit(log, other_day(), e2, "DUP_DROPPED", tg)
        elif kind in ("conflict_value", "conflict_invalid", "conflict_on_clicked", "conflict_enum_case"):
            e2 = dict(e)
            if kind == "conflict_value":
                f = rng.choice(NUM_FIELDS[log] + INT_FIELDS[log])
                from decimal import Decimal

                e2[f] = Num(str(Decimal(e[f].text) + 1))
            elif kind == "conflict_invalid":
                self.mut_invalid(log, e2)
                if e2 == e:
                    e2["country"] = "XX"
            elif kind == "conflict_on_clicked" and log == "impressions":
                e2["clicked"] = not e["clicked"]
            elif kind == "conflict_enum_case" and log in ("impressions", "orders", "coin_purchases"):
                f = {"impressions": "pricing_model", "orders": "channel", "coin_purchases": "platform"}[log]
                e2[f] = e[f].upper()
            else:
                e2["country"] = "GB" if e["country"] != "GB" else "DE"
            self.emit(log, a0, e, "conflicting_duplicate", tags)
            self.emit(log, other_day(), e2, "conflicting_duplicate", tags)
        elif kind == "one_late":
            self.emit(log, a0, e, ok, tags)
            self.emit(log, d + dt.timedelta(days=rng.randint(4, 6)), e, "late_arrival", tags)
        elif kind == "one_future":
            self.emit(log, a0, e, ok, tags)
            self.emit(log, d - dt.timedelta(days=rng.randint(1, 2)), e, "future_event", tags)
        elif kind == "conflict_one_late":
            e2 = dict(e)
            e2["country"] = "XX"
            self.emit(log, a0, e, ok, tags)
            self.emit(log, d + dt.timedelta(days=rng.randint(4, 6)), e2, "late_arrival", tags)
        elif kind == "conflict_schema_copy":
            e2 = dict(e)
            self.mut_schema(log, e2)
            if e2.get("event_id") != eid:
                e2["event_id"] = eid
                e2["country"] = None
            self.emit(log, a0, e, ok, tags)
            self.emit(log, other_day(), e2, "schema_violation", tags)
        elif kind == "conflict_malformed_copy":
            t = line()
            self.emit(log, a0, e, ok, tags)
            self.emit(
                log,
                other_day(),
                None,
                "malformed",
                tags + ["AMBIG:malformed_event_id"],
                text=t[: rng.randint(10, len(t) - 2)],
                eid="",
            )
        elif kind == "cross_date_conflict":
            # same id, times on two different (adjacent) event dates, both in window
            e2 = dict(e)
            e2["event_time"] = fmt_time(dt.datetime(d.year, d.month, d.day) - dt.timedelta(seconds=1), "Z")
            e["event_time"] = fmt_time(dt.datetime(d.year, d.month, d.day), "Z")
            self.emit(log, d + dt.timedelta(days=1), e, "conflicting_duplicate", tags)
            self.emit(log, d, e2, "conflicting_duplicate", tags)
        elif kind == "in_window_outside_range_conflict":
            # copy A on START (in range), copy B event_date START-3, both arrive dt=START
            d = START
            e = self.base(log, d, eid)
            e2 = self.base(log, START - dt.timedelta(days=3), eid)
            self.emit(log, START, e, "conflicting_duplicate", tags)
            self.emit(log, START, e2, "conflicting_duplicate", tags)
        elif kind == "identical_fail_later":
            if not self.ambiguous:
                return
            r = rng.choice([self.mut_invalid, self.mut_unknown, self.mut_fx, self.mut_underage])
            why = r(log, e) or self.mut_invalid(log, e)
            if why == "underage" and fx_bad:
                why = "missing_fx_rate"
            tg = tags + ["AMBIG:identical_group_fails_later_rule"]
            self.emit(log, a0, e, why, tg)
            self.emit(log, other_day(), e, "DUP_DROPPED", tg)
        elif kind in ("cross_window_conflict_hi", "cross_window_conflict_lo"):
            if not self.ambiguous:
                return
            tg = tags + ["AMBIG:cross_window_conflict"]
            if kind.endswith("hi"):
                d = END
                e = self.base(log, d, eid)
                e2 = self.base(log, END + dt.timedelta(days=3), eid)
                self.emit(log, END, e, "ACCEPT", tg)  # window scope
                self.emit(log, END + dt.timedelta(days=4), e2, "OUTSIDE", tg)
            else:
                d = START
                e = self.base(log, d, eid)
                e2 = self.base(log, START - dt.timedelta(days=2), eid)
                self.emit(log, START + dt.timedelta(days=1), e, "ACCEPT", tg)
                self.emit(log, START - dt.timedelta(days=1), e2, "OUTSIDE", tg)
            if (d, e.get("currency")) in FX_MISSING and log != "gifts":
                self.copies[-2]["expect"] = "missing_fx_rate"
        elif kind == "three_copies_2_1":
            e2 = dict(e)
            e2["event_time"] = fmt_time(dt.datetime(d.year, d.month, d.day, 12), "Z")
            e["event_time"] = fmt_time(dt.datetime(d.year, d.month, d.day, 11), "Z")
            self.emit(log, a0, e, "conflicting_duplicate", tags)
            self.emit(log, other_day(), e, "conflicting_duplicate", tags)
            self.emit(log, other_day(), e2, "conflicting_duplicate", tags)
        elif kind == "aff_null_vs_missing":
            if log != "orders" or not self.ambiguous:
                return
            e["affiliate_creator_id"] = None
            e2 = dict(e)
            del e2["affiliate_creator_id"]
            tg = tags + ["AMBIG:affiliate_missing_equals_null"]
            self.emit(log, a0, e, ok, tg)
            self.emit(log, other_day(), e2, "DUP_DROPPED", tg)
        elif kind == "same_id_other_log":
            other = rng.choice([x for x in SCHEMA_FIELDS if x != log])
            e2 = self.base(other, d, eid)
            self.emit(log, a0, e, ok, tags)
            ok2 = "missing_fx_rate" if other != "gifts" and (d, e2["currency"]) in FX_MISSING else "ACCEPT"
            self.emit(other, other_day(), e2, ok2, tags)

    def malformed(self, log):
        rng = self.rng
        d = self.edate()
        e = self.base(log, d)
        t = dumps(e, rng)
        kind = rng.choice(
            [
                "trunc",
                "array",
                "string",
                "number",
                "null",
                "true",
                "single_quote",
                "trailing_comma",
                "two_objects",
                "bad_utf8",
                "bom",
                "nan",
                "inf",
                "unquoted_key",
                "ctrl_char",
                "empty_obj",
                "garbage",
            ]
        )
        tags = ["malformed:" + kind]
        expect = "malformed"
        if kind in ("bom", "two_objects", "ctrl_char") and not self.ambiguous:
            return
        if kind == "trunc":
            t = t[: rng.randint(1, len(t) - 1)]
        elif kind == "array":
            t = "[" + t + "]"
        elif kind == "string":
            t = json.dumps(t)
        elif kind == "number":
            t = rng.choice(["42", "-1.5e3", "0"])
        elif kind == "null":
            t = "null"
        elif kind == "true":
            t = "true"
        elif kind == "single_quote":
            t = t.replace('"', "'")
        elif kind == "trailing_comma":
            t = t[:-1] + ",}"
        elif kind == "two_objects":
            t = t + t
            tags.append("AMBIG:lenient_parser")
        elif kind == "bad_utf8":
            t = t.encode("utf-8")[:5] + b"\xff\xfe" + t.encode("utf-8")[5:]
        elif kind == "bom":
            t = "\ufeff" + t
            tags.append("AMBIG:bom_if_first_line")
        elif kind in ("nan", "inf"):
            if not self.ambiguous:
                return
            f = rng.choice(NUM_FIELDS[log] + INT_FIELDS[log])
            e[f] = Num("NaN" if kind == "nan" else rng.choice(["Infinity", "-Infinity"]))
            t = dumps(e, rng)
            tags.append("AMBIG:nan_infinity_is_malformed")
        elif kind == "unquoted_key":
            t = t.replace('"event_id"', "event_id", 1)
        elif kind == "ctrl_char":
            t = t.replace('"event_id"', '"event\tid"', 1)  # raw TAB inside a key
            # raw tab inside a JSON string is invalid JSON -> malformed
            tags.append("AMBIG:lenient_parser")
        elif kind == "empty_obj":
            t = "{}"
            expect = "schema_violation"
        elif kind == "garbage":
            t = rng.choice(["hello world", "{{", "}", '{"event_id": }', '""', "[]"])
        self.emit(
            log,
            d + dt.timedelta(days=self.delay()),
            None,
            expect,
            tags + ["AMBIG:malformed_event_id"] if expect == "malformed" else tags,
            text=t,
            eid="",
        )

    def ambiguous_singles(self, log):
        """Single copies whose outcome depends on an interpretation."""
        if not self.ambiguous:
            return
        rng = self.rng
        d = rng.choice([START + dt.timedelta(days=i) for i in range(5)])
        e = self.base(log, d)
        kind = rng.choice(
            [
                "int_integral_fraction",
                "numeric_user_id",
                "time_lower_z",
                "time_no_seconds",
                "aff_missing",
                "ws_event_id",
                "big_fraction_time",
            ]
        )
        if kind == "int_integral_fraction" and INT_FIELDS[log]:
            f = rng.choice(INT_FIELDS[log])
            e[f] = Num(respell(e[f].text, rng))
            exp = "ACCEPT"
        elif kind == "numeric_user_id" and "user_id" in e:
            e["user_id"] = Num(str(rng.randrange(10**6)))
            exp = "schema_violation"
        elif kind == "time_lower_z":
            e["event_time"] = (
                e["event_time"].lower() if e["event_time"].endswith("Z") else e["event_time"].replace("T", "t")
            )
            exp = "schema_violation"
        elif kind == "time_no_seconds":
            e["event_time"] = e["event_time"][:16] + "Z"
            exp = "schema_violation"
        elif kind == "aff_missing" and log == "orders":
            e.pop("affiliate_creator_id")
            exp = "ACCEPT"
        elif kind == "ws_event_id":
            # leading/trailing whitespace is part of the id; whitespace-only is non-empty
            e["event_id"] = f" ws{self.counter}\t"
            if log not in self.ws_done:
                e["event_id"] = "   "
                self.ws_done.add(log)
            exp = "ACCEPT"
        elif kind == "big_fraction_time":
            e["event_time"] = e["event_time"][:19] + ".123456789Z"
            exp = "ACCEPT"
        else:
            return
        if exp == "ACCEPT" and log != "gifts" and (d, e["currency"]) in FX_MISSING:
            exp = "missing_fx_rate"
        self.emit(log, d + dt.timedelta(days=self.delay()), e, exp, ["AMBIG:" + kind])

    def boundaries(self):
        """Deterministic bound cases, each on an in-range date (every seed)."""
        cases = [
            ("impressions", "price", "0", "invalid_value"),
            ("impressions", "price", "-0.01", "invalid_value"),
            ("impressions", "price", "0.0001", "ACCEPT"),
            ("impressions", "clicked", "1", "schema_violation"),
            ("coin_purchases", "user_age", "0", "underage"),
            ("coin_purchases", "user_age", "17", "underage"),
            ("coin_purchases", "user_age", "18", "ACCEPT"),
            ("coin_purchases", "user_age", "130", "ACCEPT"),
            ("coin_purchases", "user_age", "131", "invalid_value"),
            ("coin_purchases", "user_age", "-1", "invalid_value"),
            ("coin_purchases", "coins", "0", "invalid_value"),
            ("coin_purchases", "amount", "0", "invalid_value"),
            ("coin_purchases", "amount", "-1", "invalid_value"),
            ("gifts", "user_age", "0", "underage"),
            ("gifts", "user_age", "130", "ACCEPT"),
            ("gifts", "user_age", "131", "invalid_value"),
            ("gifts", "user_age", "-1", "invalid_value"),
            ("gifts", "coins", "0", "invalid_value"),
            ("gifts", "coins", "2.5", "schema_violation"),
            ("orders", "affiliate_rate", "0", "ACCEPT"),
            ("orders", "affiliate_rate", "1", "invalid_value"),
            ("orders", "affiliate_rate", "0.99", "ACCEPT"),
            ("orders", "affiliate_rate", "-0.01", "invalid_value"),
            ("orders", "amount", "0", "invalid_value"),
            ("orders", "amount", "-10", "invalid_value"),
            ("fund_payouts", "qualified_views", "0", "ACCEPT"),
            ("fund_payouts", "qualified_views", "-1", "invalid_value"),
            ("fund_payouts", "amount", "0", "invalid_value"),
        ]
        for i, (log, f, v, exp) in enumerate(cases * 2):
            d = START + dt.timedelta(days=i % 5)
            e = self.base(log, d)
            e[f] = Num(v)
            if log in ("coin_purchases", "gifts") and f != "user_age":
                e["user_age"] = Num("30")
            if log == "coin_purchases":
                e["platform"] = "ios"
            if exp in ("ACCEPT", "underage") and log != "gifts" and (d, e["currency"]) in FX_MISSING:
                exp = "missing_fx_rate"
            self.emit(log, d + dt.timedelta(days=i % 4), e, exp, ["boundary"])

    # ------------------------------------------------------------ build
    def build(self):
        self.boundaries()
        for log in SCHEMA_FIELDS:
            for _ in range(260):
                self.single(log)
            for _ in range(90):
                self.dup_scenario(log)
            for _ in range(25):
                self.malformed(log)
            for _ in range(12):
                self.ambiguous_singles(log)


SCHEMA_FIELDS = {
    "impressions": [
        "event_id",
        "event_time",
        "user_id",
        "country",
        "ad_format",
        "advertiser_id",
        "campaign_id",
        "pricing_model",
        "price",
        "currency",
        "clicked",
    ],
    "coin_purchases": [
        "event_id",
        "event_time",
        "user_id",
        "user_age",
        "country",
        "platform",
        "coins",
        "amount",
        "currency",
    ],
    "gifts": [
        "event_id",
        "event_time",
        "user_id",
        "user_age",
        "country",
        "creator_id",
        "live_id",
        "gift_type",
        "coins",
    ],
    "orders": [
        "event_id",
        "event_time",
        "order_id",
        "event_type",
        "buyer_id",
        "seller_id",
        "country",
        "category",
        "channel",
        "amount",
        "currency",
        "affiliate_creator_id",
        "affiliate_rate",
    ],
    "fund_payouts": ["event_id", "event_time", "creator_id", "country", "qualified_views", "amount", "currency"],
}
NUM_FIELDS = {
    "impressions": ["price"],
    "coin_purchases": ["amount"],
    "gifts": [],
    "orders": ["amount", "affiliate_rate"],
    "fund_payouts": ["amount"],
}
INT_FIELDS = {
    "impressions": [],
    "coin_purchases": ["user_age", "coins"],
    "gifts": ["user_age", "coins"],
    "orders": [],
    "fund_payouts": ["qualified_views"],
}


def write_reference(out, rng):
    rd = os.path.join(out, "reference")
    os.makedirs(rd)

    def w(name, header, rows):
        import csv

        with open(os.path.join(rd, name), "w", newline="", encoding="utf-8") as f:
            cw = csv.writer(f)
            cw.writerow(header)
            cw.writerows(rows)

    w("countries.csv", ["country", "country_name", "region", "currency"], COUNTRIES)
    rows = []
    for d in FX_DATES:
        for cur, rate in FX.items():
            if (d, cur) in FX_MISSING:
                continue
            rows.append((d.isoformat(), cur, rate))
    rng.shuffle(rows)
    w("fx_rates.csv", ["date", "currency", "usd_per_unit"], rows)
    w("store_fees.csv", ["platform", "fee_rate"], STORE_FEES)
    w("gift_catalog.csv", ["gift_type", "coins"], GIFTS)
    w("shop_categories.csv", ["category", "referral_fee_rate"], CATEGORIES)
    w("parameters.csv", ["name", "value"], [("creator_usd_per_coin", CREATOR_USD_PER_COIN)])


def write_raw(out, gen):
    rng = gen.rng
    groups = {}
    for c in gen.copies:
        groups.setdefault((c["log"], c["dt"]), []).append(c)
    lo = min(min(c["dt"] for c in gen.copies), D(2025, 3, 3))
    hi = max(max(c["dt"] for c in gen.copies), D(2025, 3, 25))
    all_dts = [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
    for log in SCHEMA_FIELDS:
        for a in all_dts:
            items = groups.get((log, a), [])
            folder = os.path.join(out, "raw", log, f"dt={a.isoformat()}")
            if not items:
                if rng.random() < 0.6:
                    os.makedirs(folder, exist_ok=True)  # empty partition folder
                continue
            os.makedirs(folder, exist_ok=True)
            nfiles = rng.randint(1, 3)
            files = [[] for _ in range(nfiles)]
            rng.shuffle(items)
            for c in items:
                slot = c["slot"] if c["slot"] is not None else rng.randrange(nfiles)
                files[slot % nfiles].append(c)
            for i, fl in enumerate(files):
                gz = rng.random() < 0.3
                crlf = rng.random() < 0.25
                nl = b"\r\n" if crlf else b"\n"
                parts = []
                for c in fl:
                    b = c["line"] if isinstance(c["line"], bytes) else c["line"].encode("utf-8")
                    parts.append(b)
                    if rng.random() < 0.05:
                        parts.append(rng.choice([b"", b"   ", b"\t", b" \t "]))
                    c["file"] = None
                if rng.random() < 0.2:
                    parts.insert(0, b"")
                data = nl.join(parts)
                if parts and rng.random() < 0.7:
                    data += nl  # otherwise: no trailing newline
                name = rng.choice([f"part-{i:04d}", f"batch_{i}_ä", f"events.{i}", f"{i}"])
                path = os.path.join(folder, name + (".jsonl.gz" if gz else ".jsonl"))
                for c in fl:
                    c["file"] = os.path.relpath(path, out)
                if gz:
                    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                        f.write(data)
                else:
                    with open(path, "wb") as f:
                        f.write(data)
            if rng.random() < 0.15:  # an extra empty file (plain or gz)
                p = os.path.join(folder, "empty.jsonl" + (".gz" if rng.random() < 0.5 else ""))
                if p.endswith(".gz"):
                    with open(p, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0):
                        pass
                else:
                    open(p, "wb").close()


def write_dataset(root: Path, seed: int, ambiguous: bool = True) -> list[dict]:
    """Write the data directory at ``root`` (which must not exist) and return its manifest rows."""
    out = str(root)
    os.makedirs(out)
    gen = Gen(seed, ambiguous)
    gen.build()
    write_reference(out, gen.rng)
    write_raw(out, gen)
    return [
        {
            "log": c["log"],
            "event_id": c["eid"],
            "dt": c["dt"],
            "expect": c["expect"],
            "tags": c["tags"],
            "file": c["file"],
            "raw": c["line"] if isinstance(c["line"], str) else c["line"].decode("utf-8", "replace"),
        }
        for c in gen.copies
    ]
