"""The README's embedding examples, built and run exactly as shown.

* "Embedding in C": examples/embedding/ (main.c, startup.c, cortex-m4f.ld, build.sh, build_c99.sh)
  built for a Cortex-M4F with the suite's zig (the scripts unchanged: the object file, or the MISRA
  C99 sources compiled freestanding) and run under unicorn from Reset_Handler until the program
  reaches `halt`; the text main.c writes to UART0 is the host JIT's bits.
* "WebAssembly": examples/wasm/predict.mjs under Node (skipped when `node` is missing), the
  browser snippet of examples/wasm/index.html under Node with `fetch` and `document` stubbed, and
  model.wasm in wasmtime.

One small XGBoost model (4 features, 20 trees) for all of them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
UART0_DR = 0x4000C000


@pytest.fixture(scope="module")
def model_json(tmp_path_factory) -> Path:
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3] > 0).astype(int)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1}, xgb.DMatrix(X, y), 20)
    p = tmp_path_factory.mktemp("embedding") / "model.json"
    b.save_model(str(p))
    return p


_jit: dict[Path, object] = {}


def host_bits(model_json: Path, rows: np.ndarray) -> list[str]:
    """The host JIT's results as the examples print them (Timber's own exp: the bits every
    back-end gives; the JIT's default libm exp may differ in the last bit)."""
    import timber

    if model_json not in _jit:
        _jit[model_json] = timber.compile(str(model_json), math="timber", n_jobs=1)
    y = _jit[model_json].predict(rows.astype(np.float32))
    return [f"0x{int(b):08x}" for b in np.asarray(y, np.float32).reshape(len(rows), -1).view(np.uint32)[:, 0]]


def _rows_of(text: str) -> np.ndarray:
    """The sensor rows written in main.c (`{0.25f, ...}`; `__builtin_nanf("")` is NaN)."""
    body = text.split("rows[3][TIMBER_N_FEATURES] = {", 1)[1].split("};", 1)[0]
    rows = []
    for r in re.findall(r"\{([^{}]*)\}", body):
        rows.append([float("nan") if "nan" in v else float(v.strip().rstrip("f")) for v in r.split(",")])
    return np.array(rows, np.float32)


@pytest.mark.parametrize("script", ["build.sh", "build_c99.sh"])
def test_cortex_m4f_example_prints_the_host_jits_bits(script, model_json, tmp_path):
    """build.sh links the object file `timber compile --target thumbv7em-none-eabihf` writes;
    build_c99.sh compiles the MISRA C99 sources freestanding instead.  Same firmware output."""
    from backends.llvm.targets import resolve_target
    from tests.backends.xtarget.emulator import PAGE, Emulator
    from tests.backends.xtarget.toolchain import compiler_rt, require

    require("ziglang")
    unicorn = require("unicorn")
    from unicorn import arm_const

    t = resolve_target("thumbv7em-none-eabihf")
    for f in ("main.c", "startup.c", "cortex-m4f.ld", script):
        shutil.copy(EXAMPLES / "embedding" / f, tmp_path / f)
    shutil.copy(model_json, tmp_path / "model.json")
    env = dict(os.environ, ZIG=f"{sys.executable} -m ziglang", TIMBER=f"{sys.executable} -m timber.cli", RUNTIME=str(compiler_rt(t)))
    r = subprocess.run(["sh", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    if script == "build.sh":
        assert "flash" in r.stdout and "timber_infer_single" in r.stdout  # the --size report the README quotes

    emu = Emulator((tmp_path / "firmware.elf").read_bytes(), t)
    uc = emu.uc
    for base, size in ((UART0_DR, PAGE), (0xE000E000, PAGE), (0x20000000, 0x8000)):  # UART0, SCB (CPACR), RAM
        try:
            uc.mem_map(base, size)
        except unicorn.UcError:
            pass  # already mapped by a segment of the image
    uart = bytearray()
    uc.hook_add(
        unicorn.UC_HOOK_MEM_WRITE, lambda uc, access, addr, size, value, ud: uart.append(value & 0xFF), begin=UART0_DR, end=UART0_DR + 3
    )
    halt = emu.address("halt") & ~1
    reached = []
    uc.hook_add(unicorn.UC_HOOK_CODE, lambda uc, addr, size, ud: (reached.append(addr), uc.emu_stop()), begin=halt, end=halt + 1)
    uc.reg_write(arm_const.UC_ARM_REG_SP, 0x20008000)  # what the vector table's first word gives the core
    uc.emu_start(emu.address("Reset_Handler") | 1, 0xFFFFFFFF, timeout=60_000_000)
    assert reached, "the firmware did not reach halt()"

    rows = _rows_of((tmp_path / "main.c").read_text())
    want = "".join(f"row {i}: {b}\n" for i, b in enumerate(host_bits(model_json, rows)))
    assert uart.decode() == want


# ----- WebAssembly -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wasm_dir(model_json, tmp_path_factory) -> Path:
    pytest.importorskip("wasmtime")
    from timber.cli import main

    d = tmp_path_factory.mktemp("wasm")
    for f in ("predict.mjs", "index.html"):
        shutil.copy(EXAMPLES / "wasm" / f, d / f)
    assert main(["compile", str(model_json), "--target", "wat", "--wasm", "-o", str(d / "model")]) == 0
    return d


ROWS = np.array([[0.25, -1.5, 0.75, 2.0], [-0.5, 0.125, -2.25, 0.0], [1.0, np.nan, 0.5, -0.75]], np.float32)


def test_wasm_in_wasmtime(model_json, wasm_dir):
    import wasmtime

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module.from_file(engine, str(wasm_dir / "model" / "model.wasm")), [])
    ex = inst.exports(store)
    mem = ex["memory"]
    js = (wasm_dir / "model" / "model.js").read_text()
    in_ptr, out_ptr = (int(re.search(rf'"{k}": (\d+)', js).group(1)) for k in ("inputPtr", "outputPtr"))
    mem.write(store, ROWS.tobytes(), in_ptr)
    assert ex["timber_infer"](store, in_ptr, len(ROWS), out_ptr, 0) == 0
    got = np.frombuffer(mem.read(store, out_ptr, out_ptr + 4 * len(ROWS)), np.uint32)
    assert [f"0x{int(b):08x}" for b in got] == host_bits(model_json, ROWS)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the wasmtime test covers model.wasm)")
    return node


def test_wasm_node_example(model_json, wasm_dir):
    r = subprocess.run([_node(), "predict.mjs"], cwd=wasm_dir, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = _rows_of_js((wasm_dir / "predict.mjs").read_text().split("const rows = [", 1)[1].split("];", 1)[0])
    assert len(rows) == 3 and np.isnan(rows[2, 1])
    assert r.stdout == "".join(f"row {i}: {b}\n" for i, b in enumerate(host_bits(model_json, rows)))


def _rows_of_js(body: str) -> np.ndarray:
    """`[a, b, ...], [c, d, ...]` (JavaScript numbers, NaN included) as float32 rows."""
    return np.array([[float(v) for v in r.split(",")] for r in re.findall(r"\[([^\[\]]*)\]", body)], np.float32)


def test_wasm_browser_snippet(model_json, wasm_dir):
    """index.html's inline script, run as the page would run it: model.js as a classic script
    (TimberModel on the global object), fetch() serving files from the directory, and the
    element the snippet writes into."""
    html = (wasm_dir / "index.html").read_text()
    script = re.findall(r"<script>(.*?)</script>", html, re.S)[0]
    assert '<script src="model/model.js"></script>' in html
    harness = f"""
const fs = require("fs"), path = require("path"), vm = require("vm");
const dir = {str(wasm_dir)!r};
const out = {{ textContent: "" }};
const context = {{
  WebAssembly, console, Response, URL, Array, Float32Array, Float64Array, BigInt64Array, Math, Object, Error,
  fetch: async (url) => new Response(fs.readFileSync(path.join(dir, url)), {{ headers: {{ "content-type": "application/wasm" }} }}),
  document: {{ getElementById: (id) => (id === "out" ? out : null) }},
}};
context.self = context;
context.globalThis = context;
vm.createContext(context);
vm.runInContext(fs.readFileSync(path.join(dir, "model/model.js"), "utf8"), context);
vm.runInContext({script!r}, context);
setTimeout(() => console.log(out.textContent), 500);
"""
    r = subprocess.run([_node(), "-e", harness], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    X = _rows_of_js(script.split("model.predict([", 1)[1].split("]);", 1)[0])
    got = [float(line.split(": ")[1]) for line in r.stdout.strip().splitlines()]
    # The snippet prints JavaScript numbers: the float32 results widened to double, shortest form.
    want = [float(np.array([int(b, 16)], np.uint32).view(np.float32)[0]) for b in host_bits(model_json, X)]
    assert len(got) == len(X) and got == want


def test_readme_shows_the_files_the_tests_build():
    """Once the README has its "Embedding in C" section, the main.c, build.sh and predict.mjs it
    shows are these files, character for character (the tests above build and run them)."""
    readme = (ROOT / "README.md").read_text()
    if "## Embedding in C" not in readme:
        pytest.skip("README.md has no 'Embedding in C' section yet")
    blocks = re.findall(r"```\w*\n(.*?)```", readme, re.S)
    for f in ("embedding/main.c", "embedding/build.sh", "embedding/build_c99.sh", "wasm/predict.mjs"):
        assert (EXAMPLES / f).read_text() in blocks, f"README.md does not show examples/{f} as it is"
