"""The embedded DNS server's message handling (no sockets)."""

import asyncio
import struct

import pytest

from sampan.network import dns


def query(name, qtype=dns.TYPE_A, qid=0x1234):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def answers(reply):
    qid, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", reply)
    _, off = dns._read_name(reply, 12)
    off += 4
    out = []
    for _ in range(an):
        _, off = dns._read_name(reply, off)
        atype, _, _, ln = struct.unpack_from("!HHIH", reply, off)
        out.append((atype, reply[off + 10: off + 10 + ln]))
        off += 10 + ln
    return qid, flags & 0xF, out


def resolver(upstream_reply=None):
    names = {"db": ["10.1.0.2", "10.1.0.3"]}

    async def fake_forward(cid, q):
        return upstream_reply or dns.build_response(q, dns.RCODE_NXDOMAIN)
    r = dns.Resolver(lambda cid, n: names.get(n), lambda cid, ip: "db.appnet" if ip == "10.1.0.2" else None,
                     lambda cid: [])
    r.forward = fake_forward
    return r


def test_local_names_answer_with_every_address():
    qid, rcode, ans = answers(asyncio.run(resolver().answer("c", query("DB"))))
    assert qid == 0x1234 and rcode == 0
    assert ans == [(1, bytes([10, 1, 0, 2])), (1, bytes([10, 1, 0, 3]))]


def test_aaaa_for_a_known_name_is_empty_noerror():
    _, rcode, ans = answers(asyncio.run(resolver().answer("c", query("db", dns.TYPE_AAAA))))
    assert rcode == 0 and ans == []


def test_unknown_names_are_forwarded():
    _, rcode, _ = answers(asyncio.run(resolver().answer("c", query("example.com"))))
    assert rcode == dns.RCODE_NXDOMAIN


def test_ptr():
    _, rcode, ans = answers(asyncio.run(resolver().answer("c", query("2.0.1.10.in-addr.arpa", dns.TYPE_PTR))))
    assert rcode == 0 and ans[0][0] == dns.TYPE_PTR and b"appnet" in ans[0][1]


def test_no_upstream_is_servfail():
    r = dns.Resolver(lambda c, n: None, lambda c, i: None, lambda c: [])
    _, rcode, _ = answers(asyncio.run(r.answer("c", query("example.com"))))
    assert rcode == dns.RCODE_SERVFAIL


@pytest.mark.parametrize("bad", [b"", b"\x00" * 5, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c",
                                 b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",
                                 b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01"])
def test_malformed_queries_get_formerr_or_nothing(bad):
    reply = asyncio.run(resolver().answer("c", bad))
    if len(bad) < 12:
        assert reply is None
    else:
        assert struct.unpack_from("!H", reply, 2)[0] & 0xF == dns.RCODE_FORMERR


def test_reverse_name():
    assert dns.reverse_name("4.0.17.172.in-addr.arpa.") == "172.17.0.4"
    assert dns.reverse_name("x.in-addr.arpa") is None
    assert dns.reverse_name("example.com") is None
