"""The static site: built from fixture records, checked as files and in headless Chromium.

The browser is Debian's `chromium`, driven through the Chrome DevTools protocol over a pipe
(`--remote-debugging-pipe`: JSON messages separated by NUL bytes on file descriptors 3 and 4), so
the test needs nothing beyond the standard library. Where no Chromium is installed the browser
tests are skipped, saying so; nothing is installed at run time.
"""

from __future__ import annotations

import base64
import fcntl
from markupsafe import escape
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from benchmark.contract.io import write_json
from benchmark.contract.registry import available_methods
from benchmark.render.report import write_leaderboard
from benchmark.render.site import MARKER, SiteError, build_site

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = next((path for path in (shutil.which("chromium"), "/usr/bin/chromium") if path and Path(path).exists()), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: `apt-get install chromium`; .ci/run installs "
                             "it): the in-browser checks of the site are skipped")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- fixture records ---------------------------------------------------------------------------


def make_record(method: str, seed: int, accuracy: float, *, dataset="digits", profile="smoke", variant="", T=8,
                family="direct", step=None, tier1=1000.0, tier2=2000.0, robust=None) -> dict:
    """A result record as `benchmark.results.records.collect_records` makes it."""
    step = T if step is None else step
    layers = [{"name": "fc1", "type": "Linear", "event_kind_in": "analog", "neurons": 64, "dense": 4096,
               "acs": 0.0, "macs": 4096.0, "spikes": 0.0, "spikes_per_neuron": 0.0, "neuron_updates": 64 * T},
              {"name": "fc2", "type": "Linear", "event_kind_in": "binary", "neurons": 10, "dense": 640,
               "acs": 100.0 * seed + 200, "macs": 0.0, "spikes": 20.0 + seed, "spikes_per_neuron": 2.0 + seed / 10,
               "neuron_updates": 10 * T}]
    return {
        "dataset": dataset, "profile": profile, "method": method, "family": family, "variant": variant, "arch": "mlp-s",
        "T": T, "seed": seed, "accuracy": accuracy, "val_accuracy": accuracy - 0.01,
        "decision_step": {"mean": step, "p50": step, "p95": T},
        "anytime": {"accuracy": [accuracy * min(1.0, (t + 1) / step) for t in range(T)]},
        "spikes_per_sample": 20.0 + seed, "bits_per_sample": 20.0 + seed,
        "budget": {"epochs": 1, "optimizer_steps": 22, "train_seconds": 1.5},
        "ops": {"dense": 4736, "acs": 100.0 * seed + 200, "macs": 4096.0, "neuron_updates": 74 * T,
                "update_acs": 74 * T, "update_macs": 0, "acs_every_step": 100.0 * seed + 200, "macs_every_step": 4096.0},
        "energy": {"tier1_pj": tier1, "tier2_pj": tier2, "cost_model": "fp32-45nm"},
        "robustness": robust, "params": 4810, "footprint_bytes": 19240, "train_seconds": 1.5,
        "throughput_samples_per_s": 9000.0, "layers": layers,
        "hyperparameters": {"T": T, "beta": 0.9 if variant != "beta=0.5" else 0.5, "lr": 0.0005},
        "citation": f"{method} et al. 2024",
        "provenance": {"git_commit": "0123abcd", "git_dirty": False, "versions": {"torch": "2.14.1"}, "device": "cpu",
                       "dataset_sha256": "d1g175", "params_hash": f"h-{method}-{variant}-{T}",
                       "created": f"2026-01-0{seed + 1}T00:00:00+00:00"},
    }


def robust(noise: list[float], blur: list[float], steps: float) -> dict:
    return {"mean_accuracy": (sum(noise) + sum(blur)) / 10, "relative_error": 1.0, "baseline": "digits/ann/0",
            "per_corruption": {
                "gaussian_noise": {"family": "noise", "severities": [1, 2, 3, 4, 5], "accuracy": noise,
                                   "decision_step_mean": [steps] * 5},
                "gaussian_blur": {"family": "blur", "severities": [1, 2, 3, 4, 5], "accuracy": blur,
                                  "decision_step_mean": [steps + 0.5] * 5}}}


# digits/smoke: four rows (ann ×2 seeds, rate ×3, rate T=4, and `tempo`: an early-exit method from
# a plugin not installed here) and a paper reference; energy: ann is dearer than rate in tier 1
# (5000 > 2000 pJ) and cheaper in tier 2 (9000 < 12000): a flip.
RECORDS = [
    *(make_record("ann", seed, accuracy, T=1, family="ann", tier1=5000.0, tier2=9000.0,
                  robust=robust([0.9, 0.8, 0.7, 0.6, 0.5], [0.9] * 5, 1.0)) for seed, accuracy in [(0, 0.95), (1, 0.97)]),
    *(make_record("rate", seed, accuracy, tier1=2000.0, tier2=12000.0,
                  robust=robust([0.8, 0.7, 0.6, 0.5, 0.4], [0.8] * 5, 8.0))
      for seed, accuracy in [(0, 0.90), (1, 0.91), (2, 0.92)]),
    make_record("rate", 0, 0.80, variant="T=4", T=4, tier1=1000.0, tier2=6000.0),
    make_record("tempo", 0, 0.85, step=3.0, tier1=800.0, tier2=1500.0, robust=robust([0.8] * 5, [0.7] * 5, 4.0)),
    make_record("ann", 0, 0.88, dataset="fashion-mnist", profile="quick", T=1, family="ann"),
]
REFERENCES = [{"dataset": "digits", "method": "ttfs", "accuracy": 0.929, "T": 8, "source": "Che et al., arXiv 2410.23619"}]
MEASURED_ROWS = 4  # digits/smoke: ann, rate, rate (T=4), tempo
GRID = [make_record("rate", 0, accuracy, variant=f"T={T}", T=T) for T, accuracy in [(2, 0.7), (4, 0.8), (16, 0.93)]]


def tiny_png() -> bytes:
    """A 1×1 grey PNG, written by hand (stands in for the grid's own plot)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


CLAIM = {"id": "rate-cheaper", "paper": "Doe et al.", "claim": "rate costs less energy than the ANN", "dataset": "digits",
         "reference": None, "note": "", "not_tested": None,
         "test": {"metric": "energy_tier1", "direction": "less", "threshold": 0.0,
                  "a": {"method": "rate", "variant": ""}, "b": {"method": "ann", "variant": ""}}}
DEPLOYMENT = {"portable": "approximate (subtractive reset → reset to zero; agreement: snntorch 97.0 %)",
              "reasons": [], "approximations": [{"layer": "act1", "code": "subtractive-reset", "detail": "V ← 0"}],
              "roundtrip": {"snntorch": {"status": "ok", "error": None, "agreement": 97.0, "accuracy": 0.9,
                                         "first_divergence": {"layer": "act1", "node": "act1", "step": 3}}},
              "fixed_point": {"fp32": {"accuracy": 0.9, "tier1_pj": 2000.0, "agreement_with_fp32": None},
                              "int8": {"accuracy": 0.89, "tier1_pj": 300.0, "agreement_with_fp32": 0.98},
                              "int4": {"accuracy": 0.7, "tier1_pj": 300.0, "agreement_with_fp32": 0.75}}}


def write_reports(root: Path, records: list[dict], references: list[dict] = ()) -> Path:
    """The reports the report stage writes from `records` (baseline: ann) into `root`; its leaderboard.json."""
    records = [{**record, "deployment": DEPLOYMENT} if (record["method"], record["variant"]) == ("rate", "") else record
               for record in records]
    write_leaderboard(records, root, "ann", references, root / "grids", claims=[CLAIM], profile="smoke")
    return root / "leaderboard.json"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    write_json(root / "grids" / "rate-T" / "records.json", {"schema": 2, "grid": "rate-T", "records": GRID})
    (root / "grids" / "rate-T" / "accuracy.png").write_bytes(tiny_png())
    written = build_site(write_reports(root, RECORDS, REFERENCES), root / "site")
    assert all(path.is_file() for path in written)
    return root / "site"


# --- the files -----------------------------------------------------------------------------------


class Links(HTMLParser):
    """Every href and src of a page, and every id."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.links += [attributes[name] for name in ("href", "src") if attributes.get(name)]
        if attributes.get("id"):
            self.ids.add(attributes["id"])


def parse(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_pages_and_provenance_files_exist(site):
    names = {path.relative_to(site).as_posix() for path in site.rglob("*") if path.is_file()}
    assert {"index.html", "provenance.html", "claims.html", "portability.html", "methods/ann.html", "methods/rate.html", "methods/tempo.html",
            "grids/rate-T/accuracy.png", "methods/rate-T.png"} <= names
    assert {"digits-smoke/accuracy_vs_energy.png", "digits-smoke/accuracy_vs_energy_tier2.png",
            "digits-smoke/accuracy_vs_decision_step.png", "digits-smoke/accuracy_vs_severity_noise.png",
            "digits-smoke/accuracy_vs_severity_blur.png", "digits-smoke/decision_step_shift.png",
            "digits-smoke/accuracy_vs_T.png", "fashion-mnist-quick/accuracy_vs_energy.png"} <= names
    provenance = sorted(name for name in names if name.startswith("provenance/"))
    assert len(provenance) == len(RECORDS) + len(GRID)
    record = json.loads((site / "provenance" / "digits.smoke.rate.T-4.T4.s0.json").read_text())
    assert record["provenance"]["params_hash"] == "h-rate-T=4-4" and record["grid"] is None


def test_the_claims_page_shows_each_verdict_linked_to_its_records(site):
    page = (site / "claims.html").read_text()
    assert 'id="rate-cheaper"' in page and "✅ holds" in page and "rate costs less energy than the ANN" in page
    assert 'href="provenance.html#digits.smoke.rate.default.T8.s0"' in page


def test_the_portability_page_and_the_board_show_the_export_and_fixed_point(site):
    page = (site / "portability.html").read_text()
    assert "subtractive reset → reset to zero" in page and "layer <code>act1</code>, step 3" in page
    assert "89.00" in page and "70.00" in page  # int8 and int4 accuracy (%) of rate's three seeds
    board = (site.parent / "digits-smoke" / "leaderboard.md").read_text()
    assert "## Deployment: fixed point and NIR" in board and "| 89.00 | 70.00 |" in board


def test_every_link_is_relative_and_resolves(site):
    pages = sorted(site.rglob("*.html"))
    ids = {page: parse(page).ids for page in pages}
    checked = 0
    for page in pages:
        for link in parse(page).links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc and not link.startswith("/"), f"{page.name}: {link}"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), f"{page.relative_to(site)} links to a missing {link}"
            if parts.fragment and target.suffix == ".html":
                assert parts.fragment in ids[target], f"{page.relative_to(site)}: no #{parts.fragment} in {target.name}"
            checked += 1
    assert checked > 50


def test_every_row_links_to_the_provenance_of_each_of_its_seeds(site):
    text = (site / "index.html").read_text()
    for record in RECORDS:
        anchor = ".".join([record["dataset"], record["profile"], record["method"],
                           (record["variant"] or "default").replace("=", "-"), f"T{record['T']}", f"s{record['seed']}"])
        assert f'href="provenance.html#{anchor}"' in text


def test_references_flags_robustness_and_method_pages(site):
    index = (site / "index.html").read_text()
    assert "ttfs <em>(paper reference)</em>" in index and "Che et al., arXiv 2410.23619" in index
    assert "<strong>rate</strong> is cheaper than <strong>ann</strong> in tier 1, but <strong>ann</strong>" in index
    assert "Decision step under corruption (early-exit methods)" in index
    rate = (site / "methods" / "rate.html").read_text()
    cls = available_methods()["rate"]
    docstring = sys.modules[cls.__module__].__doc__.strip()
    assert f"<pre>{escape(docstring)}</pre>" in rate  # the equations: the module's docstring
    assert escape(cls.citation) in rate
    described = [field.description for field in cls.Config.model_fields.values() if field.description]
    assert described and all(escape(text) in rate for text in described)
    assert "Grid <code>rate-T</code>" in rate and "fc2" in rate
    tempo = (site / "methods" / "tempo.html").read_text()
    assert "not installed where this site was built" in tempo and "tempo et al. 2024" in tempo


def test_a_stale_page_is_removed_and_a_foreign_folder_is_refused(tmp_path):
    write_reports(tmp_path, RECORDS[-1:])
    (tmp_path / "site" / "methods").mkdir(parents=True)
    (tmp_path / "site" / "methods" / "old.html").write_text("stale")
    with pytest.raises(SiteError, match="not empty and was not built"):
        build_site(tmp_path / "leaderboard.json", tmp_path / "site")
    (tmp_path / "site" / MARKER).write_text("")
    build_site(tmp_path / "leaderboard.json", tmp_path / "site")
    assert not (tmp_path / "site" / "methods" / "old.html").exists()
    assert (tmp_path / "site" / "methods" / "ann.html").exists()


def test_an_unknown_schema_is_refused_naming_the_file(tmp_path):
    write_json(tmp_path / "leaderboard.json", {"schema": 99, "records": RECORDS})
    with pytest.raises(SiteError, match=r"leaderboard\.json has leaderboard schema 99.*reads schema 2"):
        build_site(tmp_path / "leaderboard.json", tmp_path / "site")


# --- in the browser --------------------------------------------------------------------------------


class Chromium:
    """Headless Chromium driven through the DevTools protocol over a pipe; one page."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", "--window-size=1400,1000", "--hide-scrollbars"]

    def __init__(self, executable: str, profile: Path, timeout: float = 30.0) -> None:
        self.timeout, self.next_id, self.buffer = timeout, 0, b""
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()
        # Above 10, so the child can move them to 3 and 4 without overwriting one with the other.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_read, from_browser_write)]
        os.close(to_browser_read), os.close(from_browser_write)

        def child_fds() -> None:
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self.process = subprocess.Popen([executable, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        pass_fds=(3, 4), preexec_fn=child_fds, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in ends:
            os.close(fd)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" not in self.buffer:
                if not select.select([self.from_browser], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError(f"Chromium did not answer {method} within {self.timeout} s")
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe while answering {method}")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:  # anything else is an event
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def page(self, method: str, **params) -> dict:
        return self.send(method, self.session, **params)

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: Path) -> None:
        url = path.resolve().as_uri()
        self.page("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        while not self.evaluate(f"location.href === {json.dumps(url)} && document.readyState === 'complete'"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load within {self.timeout} s")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real left click (mouse pressed and released) at the middle of the element."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                            "return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path) -> None:
        height = min(int(self.evaluate("document.documentElement.scrollHeight")), 16000)
        self.page("Emulation.setDeviceMetricsOverride", width=1400, height=height, deviceScaleFactor=1, mobile=False)
        data = self.page("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_browser), os.close(self.from_browser)


@pytest.fixture(scope="module")
def browser():
    with tempfile.TemporaryDirectory(prefix="spikecode-chromium-") as profile:
        chromium = Chromium(CHROMIUM, Path(profile))
        try:
            yield chromium
        finally:
            chromium.close()


ROWS = "#digits-smoke-leaderboard tbody.measured tr"
METHODS_IN_ORDER = (f"Array.from(document.querySelectorAll('{ROWS}'), "
                    "r => r.cells[0].textContent + '|' + r.cells[1].textContent)")


def header(table: str, label: str) -> str:
    return f"{table} thead th:nth-child({LEADERBOARD_COLUMNS.index(label) + 1})"


LEADERBOARD_COLUMNS = ["method", "variant", "T", "rank", "accuracy (%)", "seeds", "val accuracy (%)", "decision step",
                       "steps to baseline − 1 pp", "spikes/sample", "bits/sample", "effective ACs", "effective MACs",
                       "energy tier 1 (nJ)", "energy tier 2 (nJ)", "corruption accuracy (%)",
                       "relative corruption error", "epochs", "optimizer steps", "train time (s)", "provenance"]


@needs_chromium
def test_leaderboard_renders_sorts_on_click_and_loads_every_plot(site, browser):
    browser.open(site / "index.html")
    table = "#digits-smoke-leaderboard"
    assert browser.evaluate(f"Array.from(document.querySelectorAll('{table} thead th'), th => th.textContent)") == \
        LEADERBOARD_COLUMNS
    assert browser.evaluate(f"document.querySelectorAll('{ROWS}').length") == MEASURED_ROWS
    assert browser.evaluate(f"document.querySelectorAll('{table} tbody.references tr').length") == 1
    assert browser.evaluate("document.querySelectorAll('#fashion-mnist-quick-leaderboard tbody.measured tr').length") == 1
    # as built: accuracy, descending (ann 96 %, rate 91 %, tempo 85 %, rate T=4 80 %)
    assert browser.evaluate(METHODS_IN_ORDER) == ["ann|default", "rate|default", "tempo|default", "rate|T=4"]

    browser.click(header(table, "energy tier 1 (nJ)"))  # first click: cheapest first
    assert browser.evaluate(METHODS_IN_ORDER) == ["tempo|default", "rate|T=4", "rate|default", "ann|default"]
    assert browser.evaluate(f"document.querySelector('{header(table, 'energy tier 1 (nJ)')}').ariaSort") == "ascending"
    browser.click(header(table, "energy tier 1 (nJ)"))  # again: reversed
    assert browser.evaluate(METHODS_IN_ORDER) == ["ann|default", "rate|default", "rate|T=4", "tempo|default"]
    browser.click(header(table, "decision step"))  # ann answers at step 1 (T = 1), tempo at 3, rate at T
    assert browser.evaluate(METHODS_IN_ORDER)[:2] == ["ann|default", "tempo|default"]
    browser.click(header(table, "corruption accuracy (%)"))  # rate (T=4) has no robustness: last
    assert browser.evaluate(METHODS_IN_ORDER) == ["ann|default", "tempo|default", "rate|default", "rate|T=4"]
    assert browser.evaluate(f"document.querySelectorAll('{table} .flag').length") == 2  # ann and rate

    images = "Array.from(document.images, i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    loaded = browser.evaluate(images)
    assert len(loaded) >= 10 and all(ok for _, ok in loaded), [src for src, ok in loaded if not ok]
    browser.click(header(table, "accuracy (%)"))  # back to the best first for the screenshot
    browser.screenshot(ARTIFACTS / "site.png")
    assert (ARTIFACTS / "site.png").read_bytes().startswith(PNG_SIGNATURE)


@needs_chromium
def test_method_pages_load_their_images_and_sort(site, browser):
    browser.open(site / "methods" / "rate.html")
    loaded = browser.evaluate("Array.from(document.images, i => i.complete && i.naturalWidth > 0)")
    assert loaded == [True, True, True]  # the board's anytime curves, the grid's plot, the accuracy-vs-T sweep
    grid = "#grid-rate-T + p + table"
    assert browser.evaluate(f"Array.from(document.querySelectorAll('{grid} tbody tr'), r => r.cells[0].textContent)") \
        == ["16", "4", "2"]  # accuracy, descending
    browser.click(f"{grid} thead th:nth-child(1)")  # T: compared as numbers-in-text, 2 < 4 < 16
    assert browser.evaluate(f"Array.from(document.querySelectorAll('{grid} tbody tr'), r => r.cells[0].textContent)") \
        == ["2", "4", "16"]
    browser.open(site / "provenance.html")
    assert browser.evaluate("document.querySelectorAll('section.provenance').length") == len(RECORDS) + len(GRID)
