#!/usr/bin/env python3
"""Writes the seed corpus of both fuzz targets into tests/fuzz/corpus/<target>/.

    tests/fuzz/make_corpus.py      # rewrites every seed (they are committed; rerun after edits)

json_codec_fuzz seeds are client frames: real protocol messages and edge cases of the JSON
reader. core_events_fuzz seeds are scripts for core_harness.cc, written here by operation name;
the byte values below must match the Op enum and vocabulary tables in core_harness.cc.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))

# --- json_codec_fuzz: one frame per file -------------------------------------------------------

DEEP_OK = b'{"type":"broadcast","payload":' + b"[" * 63 + b"]" * 63 + b"}"  # 64 levels: the limit
DEEP_BAD = b'{"type":"broadcast","payload":' + b"[" * 64 + b"]" * 64 + b"}"  # 65 levels: bad_json

def members(n, name=b'"m%d"'):
    """n tiny members "m0":0,... (names from `name`, a %d pattern)."""
    return b",".join(name % i + b":0" for i in range(n))


MEMBERS_AT_LIMIT = b'{"type":"broadcast",' + members(1023) + b"}"  # 1,024 members: the limit
MEMBERS_OVER_LIMIT_NESTED = b'{"type":"broadcast","payload":[1,{' + members(1025) + b"}]}"  # bad_message
# A large object (past the linear scan of the first 16 names) whose last name repeats one, escaped.
DUPLICATE_IN_LARGE_OBJECT = b'{"type":"broadcast","payload":{' + members(900) + b',"\\u006d7":1}}'

JSON_SEEDS = {
    "register_seed_walkthrough": b'{"type":"register","node_id":"mac-1","capabilities":["llm"]}',
    "join_token_node_name": b'{"type":"join","node_id":"android-1","node_name":"Pixel 8",'
                            b'"token":"t0k","capabilities":[]}',
    "broadcast_object_payload": b'{"type":"broadcast","payload":{"text":"hi","n":[1,2.5e-3,-0,true,false,null]}}',
    "direct_unicode": '{"type":"direct","target":"mac-1","payload":"h\\u00e9llo \\ud83d\\ude00 \u00e9\U0001d11e"}'.encode(),
    "llm_request_prompt": b'{"type":"llm_request","request_id":"1","prompt":"Hello!","model":"llama3"}',
    "chat_request_messages": b'{"type":"chat_request","request_id":7,"messages":[{"role":"user","content":"hi"}],'
                             b'"stream":true}',
    "llm_response_spoofed_from": b'{"type":"llm_response","target":"android-1","request_id":"1",'
                                 b'"response":"Hi there!","from":"someone-else"}',
    "ping": b'{"type":"ping"}',
    "capabilities_update": b'{ "type" : "capabilities_update" , "capabilities" : [ "llm" , "vision" ] }\n',
    "unknown_type": b'{"type":"teleport","x":1}',
    "gossip_android": b'{"type":"gossip","from":"android-1","payload":{"peers":["mac-1"],"ttl":3}}',
    "intent_with_request_id": b'{"type":"intent","request_id":"i-1","intent":"summarize","args":{}}',
    "route_response_null_id": b'{"type":"route_response","request_id":null,"route":[]}',
    "escaped_keys": b'{"typ\\u0065":"llm_request","r\\u0065quest_id":"x","fr\\u006fm":"spoof",'
                    b'"p\\u0061yload":"\\u0000\\u001f\\/\\b\\f\\n\\r\\t\\"\\\\"}',
    "lone_surrogates": b'{"type":"direct","target":"\\ud800","payload":"\\udc00x\\ud800\\u0041"}',
    "big_numbers": b'{"type":"llm_response","target":"a","request_id":-12345678901234567890.5E+10,'
                   b'"response":1e400}',
    "duplicate_keys": b'{"type":"ping","type":"llm_request","request_id":"a","request_id":"b",'
                      b'"prompt":"x","prompt":1,"messages":null}',
    "duplicate_prompt": b'{"type":"llm_request","request_id":"1","prompt":"A","prompt":"B"}',
    "duplicate_escaped_nested": b'{"type":"direct","target":"x","payload":[{"k":{"a":1,"\\u0061":2}}]}',
    "near_duplicates": b'{"type":"broadcast","payload":{"a":1,"ab":2,"\\u0062":3,"A":4,"a\\u0000":5,"\\/":6},'
                       b'"x":[{"k":1},{"k":2}],"k":{"k":{"k":0}}}',
    "members_at_limit": MEMBERS_AT_LIMIT,
    "members_over_limit_nested": MEMBERS_OVER_LIMIT_NESTED,
    "duplicate_in_large_object": DUPLICATE_IN_LARGE_OBJECT,
    "deep_at_limit": DEEP_OK,
    "deep_over_limit": DEEP_BAD,
    "not_an_object": b'[1,"two",{"three":3}]',
    "overlong_utf8": b'{"type":"broadcast","payload":"\xc0\xaf"}',
    "four_byte_utf8": b'{"type":"register","node_id":"\xf0\x9d\x84\x9e\xf4\x8f\xbf\xbf","name":"\xe2\x82\xac",'
                      b'"capabilities":["\xe2\x82\xac"]}',
    "truncated": b'{"type":"register","node_id":"mac',
    "bad_request_id": b'{"type":"llm_request","request_id":{"nested":true},"prompt":"p"}',
    "token_not_string": b'{"type":"register","node_id":"n","token":{"sig":"abc"}}',
    "token_number": b'{"type":"register","node_id":"n","token":42}',
    "signed_join_token": '{"type":"join","node_id":"phone","token":{"mesh_id":"m\u00e9sh","node_id":"phone",'
                         '"nonce":"n-1","issuer_id":"founder","signature":"c2ln","expires_at":1.7e9,'
                         '"issued_at":1700000000,"capabilities":["llm","chat","𝄞"]}}'.encode(),
    "signed_join_token_edges": b'{"type":"join","node_id":"x","token":{"mesh_id":"m","node_id":null,'
                               b'"nonce":"\ud800","issuer_id":"\u0000","signature":"","expires_at":1e400,'
                               b'"issued_at":"yesterday","capabilities":[]}}',
    "register_mesh": b'{"type":"register_mesh","mesh_id":"fam","mesh_public_key":"AAAA",'
                     b'"founder_proof":"BBBB","node_id":"founder","display_name":"Mum","name":"Family",'
                     b'"capabilities":["llm"],"node_public_key":null}',
}

# --- core_events_fuzz: scripts ----------------------------------------------------------------

# Op enum of core_harness.cc.
CONNECT, DISCONNECT, REGISTER, BROADCAST, DIRECT, LLM_REQUEST, LLM_RESPONSE, PING, CAPS_UPDATE, \
    ADVANCE, CLOSE_ALL, REJECT, EMPTY, REGISTER_MESH, CONNECT_UNPROBED, PROBE_ANSWERED, \
    PROBE_TIMED_OUT, WIRE_BYTES, LLM_REQUEST_LONG, LLM_RESPONSE_LONG, REJECT_LONG, \
    ADVANCE_LONG, STORE_HOLD, STORE_ANSWER, UNROUTED = range(25)
# Vocabulary indices.
M1, M2, M3 = range(3)
ALPHA, BETA, GAMMA, DELTA, QUOTE = range(5)
NOBODY = 5  # direct targets only
NO_TOKEN, SECRET, OTHER = range(3)
LLM, CHAT, XY = 1, 2, 4  # capability bits
# Register variants.
NAME_ABSENT, NAME_SET, VIA_JOIN, NAME_UNICODE, NAME_QUOTED, EMPTY_NODE, LONG_NODE, LONG_NAME, \
    TOO_MANY_CAPS, LONG_CAP, EMPTY_MESH, LONG_MESH, SIGNED_TOKEN, SIGNED_MALFORMED, ODD_NODE, \
    ODD_NAME, ODD_CAP, EMPTY_CAP, RAW_NODE, RAW_NAME = range(20)
# kOddTexts (ODD_NODE, ODD_NAME, ODD_CAP).
RLO, ZWSP, NUL, TAB, SPACE, TRAILING_SPACE, LEADING_NBSP, INNER_SPACE, C1, LRI, BOM, ALM, \
    LEADING_IDEOGRAPHIC_SPACE, ZWJ_EMOJI, ACCENTED, NOT_UTF8, LRM, DEL, MVS, LEADING_LINE_SEPARATOR, \
    RLM, INVISIBLE_TIMES = range(22)
# Signed join tokens: node binding, expiry (kExpiries), nonce and signature choices.
UNBOUND, OWN_NODE, OTHER_NODE = range(3)
IN_AN_HOUR, EXPIRED, YEAR_318857, FAR_FUTURE, FAR_PAST, THIRTY_DAYS, THIRTY_DAYS_AND_A_SECOND, \
    LIFETIME_AT_BOUND, LIFETIME_OVER_BOUND, ISSUED_1970, ISSUED_AFTER_EXPIRY, ISSUED_BEFORE_TIME, \
    FOREVER_FROM_NOW, A_MINUTE = range(14)
N1, N2, NONCE_128_BYTES, NONCE_129_BYTES, N3, N4 = range(6)
BY_K, GARBAGE, BY_K2 = range(3)
# register_mesh variants.
MESH_VALID, MESH_OTHER_ID, MESH_BAD_KEY, MESH_OTHER_KEY, MESH_BAD_PROOF = range(5)
CLIENT_CLOSED, SHUTDOWN, KEEPALIVE, TRANSPORT = range(4)
NULL, OBJ, ARR, STR, BIG, SURROGATE = range(6)  # payloads
RID_1, RID_A, RID_B, RID_42, RID_NONE = range(5)
ID_256, ID_257, ID_200, ID_4096 = range(4)  # kLongIdBytes
W0, W1, W100, W700, W1000, W1001, W2000, W5000 = range(8)  # kWireSizes
ADV_10_MIN, ADV_1_H, ADV_1_DAY, ADV_30_DAYS, ADV_90_DAYS = range(5)  # kLongAdvances


def connect():
    return [CONNECT]


def disconnect(c, reason=CLIENT_CLOSED):
    return [DISCONNECT, c, reason]


def register(c, mesh, node, token=NO_TOKEN, caps=0, variant=NAME_ABSENT):
    return [REGISTER, c, mesh, node, token, caps, variant]


def signed_join(c, mesh, node, token_mesh=None, bound=OWN_NODE, expiry=IN_AN_HOUR, nonce=N1,
                signature=BY_K, caps=0):
    """register with a signed join token (the registration's token byte is unused)."""
    token_mesh = mesh if token_mesh is None else token_mesh
    return register(c, mesh, node, NO_TOKEN, caps, SIGNED_TOKEN) + [token_mesh, bound, expiry, nonce,
                                                                    signature]


def register_mesh(c, mesh, node, caps=0, variant=MESH_VALID):
    return [REGISTER_MESH, c, mesh, node, caps, variant]


def broadcast(c, payload=OBJ):
    return [BROADCAST, c, payload]


def direct(c, target, payload=STR):
    return [DIRECT, c, target, payload]


def llm_request(c, rid=RID_1, chat=False):
    return [LLM_REQUEST, c, rid, 1 if chat else 0]


def llm_response(c, target, rid=RID_1):
    return [LLM_RESPONSE, c, target, rid]


def ping(c):
    return [PING, c]


UNROUTED_UNSPECIFIED, GOSSIP, INTENT, ROUTE_REQUEST, ROUTE_RESPONSE = range(5)


def unrouted(c, kind=GOSSIP, rid=RID_NONE):
    return [UNROUTED, c, kind, rid]


def caps_update(c, caps, variant=0):
    return [CAPS_UPDATE, c, caps, variant]


def advance(seconds):
    return [ADVANCE, seconds]


def close_all(reason=SHUTDOWN):
    return [CLOSE_ALL, reason]


def reject(c, code=0, rid=RID_NONE):
    return [REJECT, c, code, rid]


def empty(c):
    return [EMPTY, c]


def register_odd(c, mesh, node, text, variant=ODD_NODE, token=NO_TOKEN, caps=0):
    """register with a kOddTexts entry as node_id (ODD_NODE), name or one more capability."""
    return register(c, mesh, node, token, caps, variant) + [text]


def register_raw(c, mesh, raw, variant=RAW_NODE, node=ALPHA):
    """register with `raw` bytes (at most 12) as node_id (RAW_NODE) or name (RAW_NAME)."""
    return register(c, mesh, node, NO_TOKEN, 0, variant) + [len(raw)] + list(raw)


def connect_unprobed():
    return [CONNECT_UNPROBED]


def probe_answered():
    return [PROBE_ANSWERED]


def probe_timed_out():
    return [PROBE_TIMED_OUT]


def wire_bytes(c, size):
    return [WIRE_BYTES, c, size]


def llm_request_long(c, length, letter=0, chat=False):
    return [LLM_REQUEST_LONG, c, length, letter, 1 if chat else 0]


def llm_response_long(c, target, length):
    return [LLM_RESPONSE_LONG, c, target, length]


def reject_long(c, code, length):
    return [REJECT_LONG, c, code, length]


def advance_long(which):
    return [ADVANCE_LONG, which]


def store_hold(on=True):
    return [STORE_HOLD, 1 if on else 0]


def store_answer(which=0, fail=False):
    """Answers (or fails) waiting auth store operation `which` (mod their count)."""
    return [STORE_ANSWER, which, 3 if fail else 0]


def script(*steps):
    return bytes(b for step in steps for b in step)


CORE_SEEDS = {
    "seed_walkthrough": script(
        connect(), connect(),
        register(0, M1, ALPHA, caps=LLM), register(1, M1, BETA),
        llm_request(1, RID_1), llm_response(0, BETA, RID_1), ping(1)),
    "broadcast_three_peers": script(
        connect(), connect(), connect(),
        register(0, M1, ALPHA), register(1, M1, BETA, variant=NAME_SET), register(2, M1, DELTA),
        broadcast(0, OBJ), broadcast(2, SURROGATE), broadcast(1, BIG)),
    "direct_and_unknown_target": script(
        connect(), connect(), register(0, M2, ALPHA), register(1, M2, QUOTE, variant=NAME_QUOTED),
        direct(0, QUOTE), direct(1, ALPHA, ARR), direct(0, NOBODY), direct(0, ALPHA)),
    "takeover_same_token": script(
        connect(), connect(), connect(),
        register(0, M1, ALPHA, SECRET, LLM), register(1, M1, BETA),
        llm_request(1, RID_A), register(2, M1, ALPHA, SECRET, CHAT, VIA_JOIN),
        disconnect(0), broadcast(2)),
    "node_id_in_use_other_token": script(
        connect(), connect(), register(0, M3, GAMMA, SECRET), register(1, M3, GAMMA, OTHER),
        register(1, M3, GAMMA, NO_TOKEN), register(1, M3, BETA), register(1, M3, BETA)),
    "registration_timeout": script(
        connect(), connect(), register(1, M1, ALPHA), advance(29), connect(), advance(1),
        ping(0), register(0, M1, BETA), advance(63), disconnect(0, KEEPALIVE), disconnect(2)),
    "llm_peer_left": script(
        connect(), connect(), connect(),
        register(0, M1, ALPHA, caps=LLM), register(1, M1, BETA), register(2, M1, GAMMA),
        llm_request(1, RID_1), llm_request(2, RID_42, chat=True), llm_request(1, RID_A),
        disconnect(0, TRANSPORT), llm_request(1, RID_B)),
    "too_many_requests": script(
        connect(), connect(), register(0, M2, ALPHA, caps=LLM | CHAT), register(1, M2, BETA),
        llm_request(1, RID_1), llm_request(1, RID_A), llm_request(1, RID_B), llm_request(1, RID_42),
        llm_request(1, RID_1), llm_response(0, BETA, RID_A), llm_request(1, RID_42)),
    "llm_fairness": script(
        connect(), connect(), connect(), connect(),
        register(0, M1, ALPHA, caps=LLM), register(1, M1, BETA, caps=LLM), register(2, M1, GAMMA, caps=LLM),
        register(3, M1, DELTA),
        llm_request(3, RID_1), llm_request(3, RID_A), llm_request(3, RID_B),
        llm_response(1, DELTA, RID_A), llm_request(0, RID_42), llm_response(2, DELTA, RID_B)),
    "capabilities_update": script(
        connect(), connect(), register(0, M1, ALPHA), register(1, M1, BETA),
        caps_update(0, LLM | XY), llm_request(1), caps_update(0, LLM, 1), caps_update(0, LLM, 2),
        caps_update(0, 0), llm_request(1, RID_B)),
    "invalid_registers": script(
        connect(), *[register(0, M1, ALPHA, variant=v) for v in
                     (EMPTY_NODE, LONG_NODE, LONG_NAME, TOO_MANY_CAPS, LONG_CAP, EMPTY_MESH, LONG_MESH)],
        register(0, M1, DELTA, variant=NAME_UNICODE), register(0, M1, BETA)),
    "not_registered": script(
        connect(), broadcast(0), direct(0, ALPHA), llm_request(0, RID_A), llm_response(0, ALPHA, RID_42),
        ping(0), caps_update(0, LLM), empty(0), reject(0, 1, RID_1)),
    "unrouted_types": script(
        connect(), connect(), unrouted(0, GOSSIP, RID_A), register(0, M1, ALPHA), register(1, M1, BETA),
        unrouted(0, GOSSIP), unrouted(0, INTENT, RID_A), unrouted(1, ROUTE_REQUEST, RID_42),
        unrouted(1, ROUTE_RESPONSE), unrouted(0, UNROUTED_UNSPECIFIED), unrouted(1, UNROUTED_UNSPECIFIED, RID_1),
        broadcast(1)),
    "close_all_then_traffic": script(
        connect(), connect(), register(0, M1, ALPHA, caps=LLM), register(1, M1, BETA),
        llm_request(1), close_all(SHUTDOWN), broadcast(0), connect(), register(2, M1, GAMMA),
        llm_request(2), disconnect(0), disconnect(1), close_all(CLIENT_CLOSED)),
    "reject_and_empty": script(
        connect(), register(0, M3, QUOTE, caps=XY), reject(0, 0), reject(0, 1, RID_1), reject(0, 2, RID_A),
        empty(0), ping(0), advance(5), ping(0)),
    "token_bound_mesh": script(
        connect(), connect(), connect(), connect(),
        register(0, M1, ALPHA, SECRET), register(1, M1, BETA), register(2, M1, GAMMA, OTHER),
        register(3, M1, DELTA, SECRET), disconnect(0), disconnect(3), advance(60), connect(),
        register(4, M1, BETA, OTHER), advance(50), connect(), register(5, M1, BETA, OTHER),
        broadcast(5)),
    "token_takeover_keeps_binding": script(
        connect(), connect(), connect(), register(0, M2, ALPHA, SECRET), register(1, M2, BETA, SECRET),
        register(2, M2, ALPHA, SECRET), disconnect(0), advance(60), advance(60), connect(),
        register(3, M2, GAMMA, SECRET), broadcast(3)),
    "open_mesh_tokens_tell_apart": script(
        connect(), connect(), connect(), register(0, M3, ALPHA), register(1, M3, BETA, SECRET),
        register(2, M3, BETA, OTHER), register(2, M3, BETA, SECRET, variant=NAME_SET)),
    "signed_mesh": script(
        connect(), connect(), connect(), connect(), connect(), connect(),
        register_mesh(0, M2, ALPHA, LLM), signed_join(1, M2, BETA),
        signed_join(2, M2, GAMMA, expiry=EXPIRED), register(3, M2, DELTA),
        register_mesh(4, M2, DELTA, variant=MESH_OTHER_KEY), signed_join(5, M2, QUOTE, bound=UNBOUND, nonce=N2),
        llm_request(1), broadcast(5)),
    "signed_mesh_refusals": script(
        connect(), connect(), connect(), connect(), connect(), connect(), connect(),
        register_mesh(0, M1, ALPHA, variant=MESH_OTHER_ID), register_mesh(1, M1, ALPHA, variant=MESH_BAD_KEY),
        register_mesh(2, M1, ALPHA, variant=MESH_BAD_PROOF), register(3, M1, BETA, SECRET),
        register_mesh(4, M1, GAMMA), signed_join(5, M3, BETA), signed_join(6, M1, BETA, signature=GARBAGE)),
    "signed_nonce_reuse": script(
        connect(), connect(), connect(), connect(), register_mesh(0, M3, ALPHA),
        signed_join(1, M3, BETA, bound=UNBOUND, nonce=N1), signed_join(2, M3, GAMMA, bound=UNBOUND, nonce=N1),
        signed_join(3, M3, DELTA, bound=OTHER_NODE), advance(60), connect(),
        signed_join(4, M3, ALPHA, signature=BY_K2), connect(), register(5, M3, ALPHA, variant=SIGNED_MALFORMED)),
    "founder_rejoins": script(
        connect(), connect(), register_mesh(0, M1, ALPHA), register_mesh(1, M1, ALPHA, LLM), disconnect(0),
        disconnect(1), connect(), register_mesh(2, M1, BETA)),
    "mesh_full": script(
        *[connect() for _ in range(6)], *[register(i, M2, i % 5, variant=NAME_SET) for i in range(5)],
        register(5, M2, ALPHA), disconnect(0), register(5, M2, ALPHA)),
    "rate_limited": script(
        connect(), connect(), register(0, M1, ALPHA), register(1, M1, BETA),
        *[ping(0) for _ in range(14)], advance(1), ping(0), broadcast(0),
        *[direct(1, ALPHA) for _ in range(24)], ping(1)),
    "disconnect_twice": script(
        connect(), connect(), register(0, M2, ALPHA), register(1, M2, BETA), disconnect(1),
        disconnect(1), broadcast(1), direct(0, BETA), disconnect(0), register(0, M2, ALPHA)),
    # Open-mesh takeover (issue 10): the holder answers its probe; what the claimant pipelined
    # waits and is answered after node_id_in_use; a second claim meanwhile is refused at once.
    "takeover_probe_answered": script(
        connect(), connect(), connect(), connect(),
        register(0, M1, ALPHA), register(1, M1, BETA), register(2, M1, ALPHA, variant=VIA_JOIN),
        ping(2), broadcast(2), register(3, M1, ALPHA), probe_answered(), broadcast(0),
        register(2, M1, GAMMA)),
    # The holder stays silent: the claimant takes the id over (holder closed replaced, no
    # peer_left, its llm requests failed) and its held events follow, in order: two llm
    # requests dispatched in one step, each to the least loaded peer.
    "takeover_probe_timed_out": script(
        connect(), connect(), connect(), connect(),
        register(0, M3, ALPHA, caps=LLM), register(1, M3, BETA, caps=LLM),
        register(3, M3, GAMMA, caps=LLM), llm_request(1, RID_A), llm_request(1, RID_B),
        register(2, M3, ALPHA, caps=CHAT), broadcast(2), llm_request(2), llm_request(2, RID_42),
        direct(2, BETA), probe_timed_out(), broadcast(1)),
    # The holder disconnects before answering: the claim goes on and the id is free; a token
    # then binds the re-created mesh; the late answer changes nothing.
    "takeover_holder_disconnects_first": script(
        connect(), connect(), connect(), register(0, M2, BETA), register(1, M2, ALPHA, SECRET),
        register(2, M2, ALPHA, OTHER), register(2, M2, ALPHA, SECRET), ping(2), disconnect(0, KEEPALIVE),
        disconnect(1, KEEPALIVE), probe_answered(), connect(), register(3, M2, GAMMA)),
    # A holder whose transport cannot probe is presumed alive.
    "takeover_unprobed_holder": script(
        connect_unprobed(), connect(), register(0, M1, BETA), register(1, M1, BETA),
        register(1, M1, BETA, variant=NAME_SET), disconnect(0), register(1, M1, BETA)),
    # What a waiting claimant may hold: three messages, 1500 wire bytes (the first always fits);
    # undecodable frames wait too; the claimant times out while waiting, then the answer comes.
    "takeover_held_bounds": script(
        connect(), connect(), register(0, M1, GAMMA), wire_bytes(1, W700), register(1, M1, GAMMA),
        ping(1), advance(5), ping(1), advance(5), ping(1), wire_bytes(1, W0), reject_long(1, 1, ID_257),
        ping(1), probe_answered(), connect(), register(2, M1, GAMMA), advance(31), probe_timed_out(),
        connect(), register(3, M1, GAMMA), disconnect(3), probe_timed_out(), broadcast(0)),
    # request_id at most 256 bytes (bad_message, not echoed); waiting llm requests bounded in
    # bytes per requester (two 200-byte ids do not fit in 500).
    "long_request_ids": script(
        connect(), connect(), llm_request_long(1, ID_4096), register(0, M2, ALPHA, caps=LLM),
        register(1, M2, BETA), llm_request_long(1, ID_256), llm_request_long(1, ID_257),
        llm_request_long(1, ID_200, 1), llm_response_long(0, BETA, ID_256), llm_request_long(1, ID_200),
        llm_request_long(1, ID_200, 1, chat=True), llm_response_long(0, BETA, ID_257),
        reject_long(1, 0, ID_257), reject_long(1, 2, ID_256)),
    # Signed join tokens: nonce bytes, lifetime from now and from issued_at, nonces per mesh.
    "signed_token_bounds": script(
        connect(), connect(), connect(), connect(), connect(), connect(), connect(), connect(),
        register_mesh(0, M1, ALPHA), signed_join(1, M1, BETA, nonce=NONCE_128_BYTES, expiry=THIRTY_DAYS),
        signed_join(2, M1, GAMMA, nonce=NONCE_129_BYTES),
        signed_join(3, M1, GAMMA, nonce=N2, expiry=THIRTY_DAYS_AND_A_SECOND),
        signed_join(4, M1, GAMMA, nonce=N2, expiry=LIFETIME_AT_BOUND),
        signed_join(5, M1, DELTA, nonce=N3, expiry=LIFETIME_OVER_BOUND),
        signed_join(6, M1, DELTA, nonce=N3, expiry=ISSUED_AFTER_EXPIRY),
        signed_join(7, M1, QUOTE, nonce=N4, expiry=ISSUED_1970), connect(),
        signed_join(8, M1, QUOTE, nonce=N4, expiry=FOREVER_FROM_NOW), connect(),
        signed_join(9, M1, QUOTE, nonce=N4)),
    # Authentication records: per client IP per minute (rate_limited, not closed), in total
    # (auth_unavailable, not closed); room again once a binding's grace ends.
    "auth_record_bounds": script(
        connect(), connect(), connect(), connect(), register(0, M1, ALPHA, SECRET),
        register(3, M2, ALPHA, SECRET), connect(), connect(), connect(), register(6, M3, ALPHA, SECRET),
        register_mesh(6, M3, ALPHA), ping(6), register_mesh(1, M3, BETA),
        signed_join(2, M3, GAMMA, nonce=N1), signed_join(4, M3, DELTA, nonce=N2),
        signed_join(5, M3, QUOTE, nonce=N3), ping(5), disconnect(0), advance(63), advance(40),
        connect(), signed_join(7, M3, QUOTE, nonce=N3)),
    # register_mesh on a live open mesh is auth_failed; once it is empty it may be signed;
    # founders per mesh are bounded.
    "register_mesh_live_open": script(
        connect(), connect(), connect(), connect(), connect(), register(0, M2, BETA), register_mesh(1, M2, ALPHA),
        disconnect(0), register_mesh(2, M2, ALPHA), register_mesh(3, M2, GAMMA, LLM),
        register_mesh(4, M2, DELTA), connect(), register_mesh(5, M2, ALPHA)),
    # A signed mesh unused for 90 days is forgotten (with its nonces); a minute's token
    # lets its nonce expire first.
    "signed_mesh_ttl": script(
        connect(), connect(), register_mesh(0, M3, ALPHA), signed_join(1, M3, BETA, expiry=A_MINUTE),
        disconnect(0), disconnect(1), advance(61), advance_long(ADV_30_DAYS), advance_long(ADV_30_DAYS),
        connect(), signed_join(2, M3, BETA), disconnect(2), advance_long(ADV_30_DAYS), connect(),
        register(3, M3, BETA), advance_long(ADV_30_DAYS), advance_long(ADV_30_DAYS), connect(),
        register(4, M3, BETA), broadcast(4)),
    # node_id and capabilities refuse controls, bidi controls, zero-width characters and edge
    # white space; names refuse controls and bidi controls only.
    "identifier_text_rules": script(
        connect(), *[register_odd(0, M1, ALPHA, t) for t in (RLO, ZWSP, NUL, TAB, SPACE, LEADING_NBSP)],
        register_odd(0, M1, ALPHA, ZWJ_EMOJI, ODD_CAP), register_odd(0, M1, ALPHA, LRI, ODD_NAME),
        register(0, M1, ALPHA, variant=EMPTY_CAP), register_odd(0, M1, ALPHA, INNER_SPACE), connect(),
        register_odd(1, M1, ALPHA, ZWJ_EMOJI, ODD_NAME, caps=LLM), direct(1, ALPHA),
        connect(), register_raw(2, M2, "\u2067x".encode()), register_raw(2, M2, b"\xed\xa0\x80"),
        register_raw(2, M2, b"\xe0\x80\x80"), register_raw(2, M2, "x\u2029".encode()),
        register_raw(2, M2, b"\tname", RAW_NAME), register_raw(2, M2, "\U0001f600 ok".encode()),
        connect(), register_raw(3, M2, "\u00a0\u200d".encode(), RAW_NAME)),
    # The byte bucket: 2000 bytes of burst, 200 bytes a second; a message over the burst waits
    # for a full bucket; messages of 0 wire bytes count only against the message bucket.
    "byte_rate_limited": script(
        connect(), register(0, M2, ALPHA), wire_bytes(0, W1000), ping(0), ping(0), ping(0),
        advance(5), ping(0), wire_bytes(0, W5000), ping(0), advance(10), ping(0), wire_bytes(0, W0),
        ping(0)),
    # Asynchronous admission (issue 11): the auth store holds its answers. Two claims of one
    # binding, answered in reverse order: the second wins, the first is auth_failed; what the
    # winner pipelined follows its join; memory then decides the next registrant at once.
    "store_claims_answered_out_of_order": script(
        connect(), connect(), connect(), store_hold(), register(0, M1, ALPHA, SECRET), ping(0),
        broadcast(0), register(1, M1, BETA, OTHER), direct(1, ALPHA), store_answer(1), store_answer(0),
        register(2, M1, GAMMA, OTHER), broadcast(2)),
    # A failed store answer is auth_unavailable (not closed); the retry gets in.
    "store_fails_then_retry": script(
        connect(), connect(), register(1, M3, BETA), store_hold(), register(0, M2, ALPHA, SECRET),
        ping(0), store_answer(0, fail=True), ping(0), register(0, M2, ALPHA, SECRET), broadcast(1),
        store_answer(0), broadcast(0)),
    # An open registrant admitted while a token's claim was out: the mesh is open, no binding.
    "store_open_registrant_first": script(
        connect(), connect(), connect(), store_hold(), register(0, M3, ALPHA, SECRET),
        register(1, M3, BETA), store_answer(1), store_answer(0), register(2, M3, GAMMA)),
    # The registrant leaves before the store answers: nothing joins; its binding holds a grace.
    "store_registrant_leaves": script(
        connect(), store_hold(), register(0, M1, ALPHA, SECRET), broadcast(0), disconnect(0),
        store_answer(0), connect(), register(1, M1, BETA, OTHER), store_hold(False), connect(),
        register(2, M1, ALPHA, SECRET), disconnect(2), advance(63), advance(40), connect(),
        register(3, M1, GAMMA, OTHER)),
    # One nonce, two nodes, both waiting: the one answered first holds it.
    "store_nonce_race": script(
        connect(), connect(), connect(), register_mesh(0, M2, ALPHA), store_hold(),
        signed_join(1, M2, BETA, bound=UNBOUND, nonce=N1),
        signed_join(2, M2, GAMMA, bound=UNBOUND, nonce=N1), broadcast(2), store_answer(1),
        store_answer(0), broadcast(1)),
    # register_mesh and a token's claim race for one empty mesh: one level wins.
    "store_sign_and_bind_race": script(
        connect(), connect(), store_hold(), register_mesh(0, M1, ALPHA), register(1, M1, BETA, SECRET),
        store_answer(1), store_answer(0), connect(), register_mesh(2, M3, GAMMA), advance(31),
        store_answer(0)),
    # core_events_fuzz (CI): a mesh's age and counters. The sole member is taken over after time
    # passed (an unanswered probe): the mesh never emptied, so it keeps its created_at and
    # messages_relayed. Then the store holds a registrant while the last member leaves: the mesh
    # it joins later is a new one (created when it joins, nothing relayed yet).
    "mesh_age_across_takeover_and_empty": script(
        connect(), connect(), register(0, M1, ALPHA, caps=LLM), register(1, M1, BETA), direct(1, ALPHA),
        disconnect(1), advance(40), connect(), register(2, M1, ALPHA, caps=CHAT), probe_timed_out(),
        connect(), connect(), register_mesh(3, M2, ALPHA), signed_join(4, M2, BETA, nonce=N1),
        direct(4, ALPHA), disconnect(4), store_hold(), connect(), signed_join(5, M2, GAMMA, nonce=N2),
        disconnect(3), advance(3), store_answer(0), connect(), signed_join(6, M2, BETA, nonce=N3),
        store_answer(0), direct(6, GAMMA)),
}


# Inputs the fuzzer found (committed as it wrote them, not scripts): kept when the rest is rewritten.
FOUND_SEEDS = {"core_events_fuzz": {"llm_request_to_a_chat_peer"}}


def write(target, seeds):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name not in FOUND_SEEDS.get(target, set()):
            os.remove(os.path.join(directory, name))
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("json_codec_fuzz", JSON_SEEDS)
    write("core_events_fuzz", CORE_SEEDS)
    print("wrote %d json_codec_fuzz and %d core_events_fuzz seeds" % (len(JSON_SEEDS), len(CORE_SEEDS)))
