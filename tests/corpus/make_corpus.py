#!/usr/bin/env python3
"""Writes the regression corpus of malformed inputs that tests/test_corpus.cpp reads.

    tests/corpus/make_corpus.py BUILD_DIR      (BUILD_DIR/examples/train makes the base checkpoint)

Four folders, one per reader: safetensors/ (load_safetensors), npy/ (load_npy), json/ (a model
config: ModelConfig::from_json of Json::parse) and checkpoint/ (load_model). A file named ok_* must
load; any_* (random byte flips) may load or fail; every other file must fail with rotor::Error.
Deterministic: the same script and base checkpoint give the same files.
"""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(12)
counts = {}


def write(folder, name, data):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    with open(os.path.join(HERE, folder, name), "wb") as f:
        f.write(data)
    counts[folder] = counts.get(folder, 0) + 1


def truncations(folder, stem, ext, data, n):
    # Lengths spread over the whole file, plus every length in the first 16 bytes.
    lengths = sorted(set(list(range(0, min(16, len(data)))) + [len(data) * i // n for i in range(n)]))
    for length in lengths:
        if length < len(data):
            write(folder, f"trunc_{stem}_{length:05d}{ext}", data[:length])


def flips(folder, stem, ext, data, n):
    for i in range(n):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        write(folder, f"any_flip_{stem}_{i:03d}{ext}", bytes(b))


# ---- safetensors ----

def st_file(header, data=b"", raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":"))
    text = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def st_entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_corpus():
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    i64 = struct.pack("<2q", -5, 1 << 40)
    bools = bytes([1, 0, 1])
    f64 = struct.pack("<d", 2.5)
    data = f32 + i64 + bools + f64
    header = {"__metadata__": {"format": "rotor", "note": "x"},
              "w": st_entry("F32", [2, 3], 0, 24), "i": st_entry("I64", [2], 24, 40),
              "b": st_entry("BOOL", [3], 40, 43), "s": st_entry("F64", [], 43, 51),
              "e": st_entry("F32", [0, 4], 51, 51)}
    base = st_file(header, data)
    write("safetensors", "ok_basic.safetensors", base)
    write("safetensors", "ok_empty_header.safetensors", st_file({}))
    write("safetensors", "ok_metadata_only.safetensors", st_file({"__metadata__": {"k": "v"}}))
    write("safetensors", "ok_unicode_name.safetensors", st_file({"\u00e9\u4e2d": st_entry("F32", [1], 0, 4)}, f32[:4]))
    write("safetensors", "ok_escaped_name.safetensors", st_file(None, f32[:4], raw_header='{"a\\u0041\\n":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'))
    write("safetensors", "ok_float_spelt_int.safetensors", st_file(None, f32[:4], raw_header='{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4.0]}}'))
    truncations("safetensors", "basic", ".safetensors", base, 40)
    flips("safetensors", "basic", ".safetensors", base, 60)

    one = lambda **kw: {"a": {**st_entry("F32", [2], 0, 8), **kw}}
    d8 = f32[:8]
    crafted = {
        # header length
        "len_huge": struct.pack("<Q", 1 << 62) + b"{}",
        "len_over_limit": struct.pack("<Q", 100_000_001) + b"{}" + b" " * 64,
        "len_past_end": struct.pack("<Q", 64) + b"{}      ",
        "len_zero": struct.pack("<Q", 0),
        "len_only": struct.pack("<Q", 8),
        # the header text
        "not_json": st_file(None, raw_header="hello world"),
        "header_array": st_file(None, raw_header="[1,2,3]"),
        "header_string": st_file(None, raw_header='"abc"'),
        "header_nul": st_file(None, raw_header=b'{"a"\x00:1}'),
        "header_bad_utf8": st_file(None, raw_header=b'{"\xff\xfe":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'),
        "header_trailing_garbage": st_file(None, raw_header='{} x'),
        "header_trailing_comma": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}'),
        "header_comment": st_file(None, d8, raw_header='{/*c*/"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        "header_single_quotes": st_file(None, d8, raw_header="{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}"),
        "header_unterminated": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]'),
        "header_deep": st_file(None, raw_header='{"__metadata__":' + "[" * 200 + "]" * 200 + "}"),
        "bad_escape_u": st_file(None, d8, raw_header='{"\\uZZZZ":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        "bad_escape_u_plus": st_file(None, d8, raw_header='{"\\u+041":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        "bad_escape_u_short": st_file(None, d8, raw_header='{"\\u41":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        "bad_escape_lone_surrogate": st_file(None, d8, raw_header='{"\\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        "bad_escape_x": st_file(None, d8, raw_header='{"\\x41":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        # numbers
        "shape_minus_expr": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2-1],"data_offsets":[0,8]}}'),
        "offset_double_exponent": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8e0e0]}}'),
        "offset_leading_zero": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,08]}}'),
        "offset_plus": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[+0,8]}}'),
        "offset_two_dots": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0.0]}}'),
        "offset_nan": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,NaN]}}'),
        "offset_huge_exponent": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e999]}}'),
        "offset_2p64": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}}'),
        "offset_2p63": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[9223372036854775808,8]}}'),
        "shape_fraction": st_file(one(shape=[2.5]), d8),
        "shape_negative": st_file(one(shape=[-2]), d8),
        "shape_string": st_file(one(shape=["2"]), d8),
        "shape_not_array": st_file(one(shape=2), d8),
        "shape_nested": st_file(one(shape=[[2]]), d8),
        "shape_overflow": st_file(one(shape=[1 << 40, 1 << 40]), d8),
        "shape_zero_times_huge": st_file(one(shape=[0, 1 << 53, 1 << 53], data_offsets=[0, 0])),
        "shape_int64_wrap": st_file(one(shape=[4294967296, 4294967296], data_offsets=[0, 0])),
        "shape_data_mismatch": st_file(one(shape=[3]), d8),
        # keys
        "duplicate_tensor": st_file(None, d8, raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        "duplicate_field": st_file(None, d8, raw_header='{"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}}'),
        "duplicate_metadata_key": st_file(None, d8, raw_header='{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
        "empty_name": st_file({"": st_entry("F32", [2], 0, 8)}, d8),
        # dtypes and entries
        "dtype_f16": st_file(one(dtype="F16"), d8),
        "dtype_bf16": st_file(one(dtype="BF16"), d8),
        "dtype_lowercase": st_file(one(dtype="f32"), d8),
        "dtype_number": st_file(one(dtype=32), d8),
        "entry_not_object": st_file({"a": [1, 2]}, d8),
        "entry_missing_dtype": st_file({"a": {"shape": [2], "data_offsets": [0, 8]}}, d8),
        "entry_missing_offsets": st_file({"a": {"dtype": "F32", "shape": [2]}}, d8),
        "metadata_not_object": st_file({"__metadata__": "x"}),
        "metadata_number_value": st_file({"__metadata__": {"k": 1}}),
        # offsets
        "offsets_reversed": st_file(one(data_offsets=[8, 0]), d8),
        "offsets_past_end": st_file(one(data_offsets=[0, 16]), d8),
        "offsets_three": st_file(one(data_offsets=[0, 4, 8]), d8),
        "offsets_overlap": st_file({"a": st_entry("F32", [2], 0, 8), "b": st_entry("F32", [2], 4, 12)}, f32[:12]),
        "offsets_hole": st_file({"a": st_entry("F32", [1], 0, 4), "b": st_entry("F32", [1], 8, 12)}, f32[:12]),
        "trailing_data": st_file({"a": st_entry("F32", [1], 0, 4)}, d8),
        "offsets_negative": st_file(one(data_offsets=[-8, 0]), d8),
    }
    for name, b in crafted.items():
        write("safetensors", name + ".safetensors", b)


# ---- npy ----

def npy_file(dict_text, data, version=(1, 0)):
    h = dict_text.encode("latin1") if isinstance(dict_text, str) else dict_text
    prefix = 10 if version[0] == 1 else 12
    h += b" " * (64 - (prefix + len(h) + 1) % 64) + b"\n"
    length = struct.pack("<H", len(h)) if version[0] == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes(version) + length + h + data


def npy_corpus():
    six = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    base = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", six)
    write("npy", "ok_float32_2d.npy", base)
    write("npy", "ok_float32.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six))
    write("npy", "ok_ids.npy", npy_file("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 4), }", struct.pack("<4q", 1, 5, 2, 7)))
    write("npy", "ok_bool.npy", npy_file("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", bytes([1, 0, 7])))
    write("npy", "ok_f64_0d.npy", npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", struct.pack("<d", 2.5)))
    write("npy", "ok_empty.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", b""))
    write("npy", "ok_version2.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six, (2, 0)))
    write("npy", "ok_version3.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six, (3, 0)))
    write("npy", "ok_double_quotes.npy", npy_file('{"descr": "<f4", "fortran_order": False, "shape": (6,)}', six))
    write("npy", "ok_key_order.npy", npy_file("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", six))
    truncations("npy", "float32_2d", ".npy", base, 30)
    flips("npy", "float32_2d", ".npy", base, 50)

    def d(descr="'<f4'", fortran="False", shape="(6,)", extra=""):
        return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + ", " + extra + "}"
    crafted = {
        "magic": b"\x93NUMPX\x01\x00" + base[8:],
        "zip": b"PK\x03\x04 a zip file",
        "version_0": b"\x93NUMPY\x00\x00" + base[8:],
        "version_4": b"\x93NUMPY\x04\x00" + base[8:],
        "header_len_huge": base[:8] + b"\xff\xff" + base[10:],
        "header_len_v2_huge": npy_file(d(), six, (2, 0))[:8] + b"\xff\xff\xff\xff" + npy_file(d(), six, (2, 0))[12:],
        "descr_twice": npy_file("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six),
        "shape_twice": npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'shape': (3,), }", six),
        "fortran_twice": npy_file("{'descr': '<f4', 'fortran_order': False, 'fortran_order': False, 'shape': (6,), }", six),
        "descr_unquoted_x": npy_file(d(descr="X<f4X"), six),
        "descr_unquoted": npy_file(d(descr="<f4"), six),
        "descr_unterminated": npy_file(d(descr="'<f4"), six),
        "descr_extra_quote": npy_file(d(descr="'<f4''"), six),
        "descr_mixed_quotes": npy_file(d(descr="'<f4\""), six),
        "descr_f2": npy_file(d(descr="'<f2'"), six),
        "descr_big_endian": npy_file(d(descr="'>f4'"), six),
        "descr_i4": npy_file(d(descr="'<i4'"), six),
        "descr_structured": npy_file(d(descr="[('a', '<f4')]"), six),
        "descr_escape": npy_file(d(descr="'<f\\x34'"), six),
        "descr_number": npy_file(d(descr="4"), six),
        "fortran_true": npy_file(d(fortran="True"), six),
        "fortran_falsey": npy_file(d(fortran="Falsey"), six),
        "fortran_zero": npy_file(d(fortran="0"), six),
        "fortran_string": npy_file(d(fortran="'False'"), six),
        "shape_list": npy_file(d(shape="[6]"), six),
        "shape_int": npy_file(d(shape="6"), six),
        "shape_paren_int": npy_file(d(shape="(6)"), six),
        "shape_negative": npy_file(d(shape="(-6,)"), six),
        "shape_letter": npy_file(d(shape="(2, x)"), six),
        "shape_float": npy_file(d(shape="(6.0,)"), six),
        "shape_no_comma": npy_file(d(shape="(2 3)"), six),
        "shape_double_comma": npy_file(d(shape="(2,, 3)"), six),
        "shape_leading_comma": npy_file(d(shape="(, 6)"), six),
        "shape_unclosed": npy_file(d(shape="(2, 3"), six),
        "shape_nested": npy_file(d(shape="((6,),)"), six),
        "shape_huge_digits": npy_file(d(shape="(99999999999999999999,)"), six),
        "shape_overflow": npy_file(d(shape="(4294967296, 4294967296)"), six),
        "shape_zero_times_huge": npy_file(d(shape="(0, 99999999999999999, 99999999999999999)"), b""),
        "shape_long_suffix": npy_file(d(shape="(6L,)"), six),
        "shape_trailing_text": npy_file(d(shape="(6,)x"), six),
        "key_extra": npy_file(d(extra="'extra': 1, "), six),
        "key_missing_shape": npy_file("{'descr': '<f4', 'fortran_order': False, }", six),
        "key_missing_descr": npy_file("{'fortran_order': False, 'shape': (6,), }", six),
        "key_unquoted": npy_file("{descr: '<f4', 'fortran_order': False, 'shape': (6,), }", six),
        "dict_unclosed": npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", six),
        "dict_unopened": npy_file("'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", six),
        "dict_missing_comma": npy_file("{'descr': '<f4' 'fortran_order': False, 'shape': (6,), }", six),
        "dict_trailing": npy_file(d() + " trailing", six),
        "dict_two": npy_file(d() + d(), six),
        "dict_empty": npy_file("{}", six),
        "header_empty": npy_file("", six),
        "header_nul": npy_file(b"{'descr': '<f4',\x00 'fortran_order': False, 'shape': (6,), }", six),
        "data_short": npy_file(d(), six[:20]),
        "data_none": npy_file(d(descr="'<f8'", shape="(1,)"), b""),
    }
    for name, b in crafted.items():
        write("npy", name + ".npy", b)


# ---- model configs (JSON) ----

TINY = {"model_type": "gla", "vocab_size": 16, "hidden_size": 8, "num_hidden_layers": 1, "num_heads": 2,
        "expand_k": 1.0, "expand_v": 1.0, "hidden_ratio": 4, "intermediate_size": 16, "norm_eps": 1e-6,
        "gate_logit_normalizer": 16, "gate_low_rank_dim": 2, "position_embedding": {"type": "rope", "theta": 10000}}


def with_field(cfg, key, value):
    c = json.loads(json.dumps(cfg))
    parts = key.split(".")
    target = c
    for p in parts[:-1]:
        target = target[p]
    target[parts[-1]] = value
    return c


# (name, raw JSON text): variants of cfg that must be refused; shared by json/ and checkpoint/.
def bad_configs(cfg):
    t = json.dumps(cfg)
    out = {
        "escape_zzzz": t[:-1] + ', "note": "\\uZZZZ"}',
        "escape_plus": t[:-1] + ', "note": "\\u+041"}',
        "escape_space": t[:-1] + ', "note": "\\u 041"}',
        "escape_41zz": t[:-1] + ', "note": "\\u41zz"}',
        "escape_minus": t[:-1] + ', "note": "\\u-123"}',
        "escape_lone_surrogate": t[:-1] + ', "note": "\\udc00"}',
        "escape_unknown": t[:-1] + ', "note": "\\q"}',
        "number_two_dots": t.replace('"norm_eps": 1e-06', '"norm_eps": 1.2.3'),
        "number_two_exponents": t.replace('"vocab_size": 16', '"vocab_size": 1e5e5'),
        "number_minus_inside": t.replace('"vocab_size": 16', '"vocab_size": 1-2'),
        "number_plus": t.replace('"vocab_size": 16', '"vocab_size": +16'),
        "number_leading_zero": t.replace('"vocab_size": 16', '"vocab_size": 016'),
        "number_trailing_dot": t.replace('"expand_k": 1.0', '"expand_k": 1.'),
        "number_leading_dot": t.replace('"expand_k": 1.0', '"expand_k": .5'),
        "number_nan": t.replace('"norm_eps": 1e-06', '"norm_eps": NaN'),
        "number_infinity": t.replace('"norm_eps": 1e-06', '"norm_eps": Infinity'),
        "number_overflow": t.replace('"norm_eps": 1e-06', '"norm_eps": 1e999'),
        "number_hex": t.replace('"vocab_size": 16', '"vocab_size": 0x10'),
        "duplicate_key": t[:-1] + ', "vocab_size": 32}',
        "duplicate_nested_key": t.replace('"type": "rope"', '"type": "rope", "type": "nope"'),
        "trailing_comma": t[:-1] + ", }",
        "comment": "// config\n" + t,
        "single_quotes": t.replace('"', "'"),
        "unterminated": t[:-1],
        "two_values": t + " " + t,
        "not_object": "[1, 2, 3]",
        "string": '"gla"',
        "empty": "",
        "deep": '{"attn": ' + "[" * 100 + "]" * 100 + "}",
        "bad_utf8": t[:-1].encode() + b', "note": "\xc3\x28"}',
        "nul_byte": t[:-1].encode() + b', "note": "a\x00b"}',
    }
    fields = [
        ("vocab_size", 1e12), ("vocab_size", 0), ("vocab_size", -16), ("vocab_size", 16.5), ("vocab_size", "16"),
        ("hidden_size", 0), ("hidden_size", 1 << 20), ("hidden_size", 7), ("num_hidden_layers", 1e6),
        ("num_hidden_layers", 0), ("num_heads", 0), ("num_heads", 3), ("num_heads", 1e300),
        ("intermediate_size", 1e12), ("intermediate_size", -1), ("hidden_ratio", 8e15), ("hidden_ratio", 0),
        ("expand_k", 0), ("expand_k", -1), ("expand_k", 1e9), ("expand_k", 0.3), ("expand_v", 0),
        ("norm_eps", -1e-6), ("norm_eps", 0), ("norm_eps", 10), ("gate_logit_normalizer", 0),
        ("gate_logit_normalizer", -16), ("gate_low_rank_dim", 0), ("gate_low_rank_dim", 1e9), ("chunk_size", 0),
        ("chunk_size", 1e12), ("conv_size", 0), ("use_short_conv", 1), ("use_output_gate", "yes"),
        ("position_embedding.type", "selective-rope"), ("position_embedding.type", ""), ("position_embedding.type", 3),
        ("position_embedding.theta", 0), ("position_embedding.theta", -10000), ("position_embedding", "rope"),
        ("attn", {"layers": [5], "num_heads": 2}), ("attn", {"layers": [0], "num_heads": 3}),
        ("attn", {"layers": [0], "num_heads": -2}), ("attn", {"layers": "0"}), ("attn", {"num_heads": 2}),
        ("attn", {"layers": [0.5]}),
    ]
    for key, value in fields:
        vname = str(value).replace(" ", "").replace("'", "").replace(":", "").replace(",", "_").replace("{", "").replace("}", "").replace("[", "").replace("]", "")
        out[f"field_{key.replace('.', '_')}_{vname}"] = json.dumps(with_field(cfg, key, value))
    sel = with_field(cfg, "position_embedding", {"type": "selective_rope", "phi_proj_rank": 4})
    for key, value in [("phi_parametrization", "lowrank"), ("phi_proj_rank", 0), ("phi_proj_rank", 1e9),
                       ("d_conv", 0), ("conv_act", "relu"), ("gate_parametrization", "x"), ("temp_type", "x"),
                       ("temp_theta", 0), ("temp_max", -1), ("gate_low_rank_dim", 0), ("skip_conv", "no")]:
        out[f"selective_{key}_{value}"] = json.dumps(with_field(sel, "position_embedding." + key, value))
    for name, text in out.items():
        assert text != t, name  # every replacement found its target
    return out


def json_corpus():
    write("json", "ok_empty_object.json", "{}")
    write("json", "ok_tiny.json", json.dumps(TINY))
    write("json", "ok_tiny_indented.json", json.dumps(TINY, indent=2))
    write("json", "ok_extra_keys.json", json.dumps({**TINY, "fuse_norm": True, "attn_mode": "chunk", "note": "\u00e9\ud83d\ude00"}))
    write("json", "ok_selective.json", json.dumps(with_field(TINY, "position_embedding", {"type": "selective_rope", "phi_proj_rank": 4})))
    write("json", "ok_hybrid.json", json.dumps(with_field(TINY, "attn", {"layers": [0], "num_heads": 2, "qk_norm": True})))
    write("json", "ok_nulls.json", json.dumps({**TINY, "intermediate_size": None, "attn": None}))
    for name, text in bad_configs(TINY).items():
        write("json", name + ".json", text)
    truncations("json", "tiny", ".json", json.dumps(TINY).encode(), 12)


# ---- checkpoints ----

def read_st(data):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def checkpoint_corpus(build):
    tmp = tempfile.mkdtemp()
    try:
        subprocess.run([os.path.join(build, "examples", "train"), "--vocab", "16", "--seq-len", "8", "--kv-pairs", "2",
                        "--train-size", "16", "--test-size", "4", "--dim", "8", "--heads", "2", "--layers", "1",
                        "--batch", "4", "--steps", "2", "--eval-every", "0", "--threads", "1", "--pe", "rope",
                        "--save", os.path.join(tmp, "base.safetensors")], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(tmp, "base.safetensors"), "rb") as f:
            base = f.read()
    finally:
        shutil.rmtree(tmp)
    header, data = read_st(base)
    meta = {k: v for k, v in header["__metadata__"].items() if k != "optimizer"}
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    config = json.loads(meta["config"])

    def rebuild(meta_over=None, tensors_over=None, data_over=None, raw_config=None):
        m = dict(meta, **(meta_over or {}))
        if raw_config is not None:
            m["config"] = raw_config
        m = {k: v for k, v in m.items() if v is not None}
        h = {"__metadata__": m, **(tensors_over if tensors_over is not None else tensors)}
        return st_file(h, data_over if data_over is not None else data)

    write("checkpoint", "ok_base.safetensors", rebuild())
    write("checkpoint", "ok_note.safetensors", rebuild({"note": "\u00e9"}))
    # Every bad variant of the base's own config (all else equal, so the variant is what fails).
    for name, text in bad_configs(config).items():
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        write("checkpoint", f"config_{name}.safetensors", rebuild(raw_config=text))
    for key, value in [("vocab_size", 17), ("hidden_size", 16), ("num_hidden_layers", 2), ("intermediate_size", 32),
                       ("num_heads", 4), ("expand_k", 2.0), ("gate_low_rank_dim", 4),
                       ("position_embedding", {"type": "selective_rope"}), ("attn", {"layers": [0], "num_heads": 2})]:
        write("checkpoint", f"mismatch_{key}_{str(value).replace(' ', '').replace(':', '').replace('{', '').replace('}', '').replace('[', '').replace(']', '').replace(',', '_')}.safetensors",
              rebuild(raw_config=json.dumps(with_field(config, key, value))))
    write("checkpoint", "config_missing.safetensors", rebuild({"config": None}))
    write("checkpoint", "config_not_json.safetensors", rebuild(raw_config="gla, 16 layers"))
    write("checkpoint", "metadata_missing.safetensors", st_file(tensors, data))
    # Parameters: non-finite values, a missing, an extra or a retyped tensor.
    name = sorted(tensors)[0]
    begin = tensors[name]["data_offsets"][0]
    for label, value in [("nan", math.nan), ("inf", math.inf), ("neg_inf", -math.inf)]:
        d = bytearray(data)
        d[begin:begin + 4] = struct.pack("<f", value)
        write("checkpoint", f"param_{label}.safetensors", rebuild(data_over=bytes(d)))
    last = max(tensors, key=lambda k: tensors[k]["data_offsets"][1])
    cut = {k: v for k, v in tensors.items() if k != last}
    write("checkpoint", "param_missing.safetensors", rebuild(tensors_over=cut, data_over=data[:tensors[last]["data_offsets"][0]]))
    extra = dict(tensors, **{"model.layers.0.extra.weight": st_entry("F32", [1], len(data), len(data) + 4)})
    write("checkpoint", "param_extra.safetensors", rebuild(tensors_over=extra, data_over=data + struct.pack("<f", 1)))
    even = next(k for k in sorted(tensors) if math.prod(tensors[k]["shape"]) % 2 == 0)
    retyped = dict(tensors, **{even: dict(tensors[even], dtype="F64", shape=[math.prod(tensors[even]["shape"]) // 2])})
    write("checkpoint", "param_retyped.safetensors", rebuild(tensors_over=retyped))
    reshaped = dict(tensors, **{last: dict(tensors[last], shape=[int(math.prod(tensors[last]["shape"]))])})
    write("checkpoint", "param_reshaped.safetensors", rebuild(tensors_over=reshaped))
    full = rebuild()
    truncations("checkpoint", "base", ".safetensors", full, 12)
    flips("checkpoint", "base", ".safetensors", full, 20)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for folder in ("safetensors", "npy", "json", "checkpoint"):
        shutil.rmtree(os.path.join(HERE, folder), ignore_errors=True)
    safetensors_corpus()
    npy_corpus()
    json_corpus()
    checkpoint_corpus(sys.argv[1])
    print(", ".join(f"{k}: {v}" for k, v in counts.items()), f"(total {sum(counts.values())})")


if __name__ == "__main__":
    main()
