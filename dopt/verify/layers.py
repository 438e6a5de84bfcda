"""Where an image's bytes go, layer by layer, and which of them are wasted.

Bytes are *wasted* when the final image cannot see them but still ships them:

* a file that a later layer deletes (whiteout, or an opaque directory) or
  overwrites - the earlier copy stays in its layer forever;
* known caches left in the final file system: apt lists and ``.deb``
  archives, pip/npm/yarn/go caches.

Each wasted group is attributed to the layer that holds the bytes, named with
the Dockerfile instruction from the image history, and tagged with the dopt
rule that would avoid it.

The efficiency score is the one Dive (github.com/wagoodman/dive) prints, so
numbers can be compared with that tool.  For every path ``p`` that is a leaf
in some layer's own tree (whiteouts count as leaves at the deleted path; a
whiteout weighs the size of the directory it deletes, or 0 for a file)::

    cumulative(p) = sum of p's size over all layers that contain p
    minimum(p)    = smallest of those sizes
    efficiency    = sum(minimum(p)) / sum(cumulative(p))    (1.0 when empty)
    dive_wasted   = sum(cumulative(p) for p found in two or more layers)

Dive ignores opaque-directory markers, and so does the score here; our own
``wasted_bytes`` counts them.
"""

from __future__ import annotations

import html
import json
import re
import sys
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dopt.verify.engine import Engine
from dopt.verify.fsdiff import CACHE_RULES, matches_any
from dopt.verify.report import format_bytes

#: Rule names for waste that is not a package-manager cache.
RULE_CLEANUP_SAME_LAYER = "cleanup-same-layer"
RULE_COPY_CHOWN = "copy-chown"
RULE_OVERWRITTEN = "overwritten-later"
#: Waste inside the base image: only a different or slimmer base removes it.
RULE_BASE_IMAGE = "base-image"

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass
class Layer:
    """One layer's own entries, as stored in its tarball."""

    index: int
    instruction: str
    files: dict[str, int] = field(default_factory=dict)  # path -> size, non-directories
    dirs: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)  # deleted paths, prefix stripped
    opaque: set[str] = field(default_factory=set)  # directories whose lower contents are hidden
    wasted_bytes: int = 0
    in_base: bool = False

    @property
    def size(self) -> int:
        return sum(self.files.values())


@dataclass(frozen=True)
class Offender:
    """A group of wasted bytes with the layer that holds them and the cure."""

    path: str
    size: int
    files: int
    layer: int
    rule: str
    reason: str


@dataclass
class LayerAnalysis:
    """Per-layer sizes, waste and Dive's efficiency for one image."""

    image: str
    layers: list[Layer]
    offenders: list[Offender]
    efficiency: float
    dive_wasted_bytes: int

    @property
    def total_size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def wasted_bytes(self) -> int:
        return sum(offender.size for offender in self.offenders)


# -- reading images ---------------------------------------------------------------

_ARGS_PREFIX = re.compile(r"^\|\d+ (?:\S+=\S* )*")


def instruction_from_history(created_by: str) -> str:
    """Turn a history ``created_by`` into the Dockerfile instruction it came from.

    The classic builder records ``/bin/sh -c #(nop) COPY ...`` and raw shell for
    RUN; BuildKit appends ``# buildkit``; both prefix RUNs with build args.
    """
    text = created_by.strip()
    if text.endswith("# buildkit"):
        text = text[: -len("# buildkit")].rstrip()
    text = _ARGS_PREFIX.sub("", text)
    if text.startswith("/bin/sh -c #(nop)"):
        return text[len("/bin/sh -c #(nop)") :].strip()
    if text.startswith("RUN /bin/sh -c "):
        return "RUN " + text[len("RUN /bin/sh -c ") :]
    if text.startswith("/bin/sh -c "):
        return "RUN " + text[len("/bin/sh -c ") :]
    return text or "(no history)"


def _read_layer(index: int, instruction: str, stream: IO[bytes]) -> Layer:
    layer = Layer(index=index, instruction=instruction)
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            path = member.name.removeprefix("./").strip("/")
            if not path:
                continue
            parent, _, name = path.rpartition("/")
            if name == OPAQUE:
                layer.opaque.add(parent)
            elif name.startswith(WHITEOUT):
                layer.whiteouts.add(f"{parent}/{name[len(WHITEOUT) :]}" if parent else name[len(WHITEOUT) :])
            elif member.isdir():
                layer.dirs.add(path)
            else:
                layer.files[path] = member.size if member.isfile() else 0
    return layer


def read_saved_image(archive_path: Path, image: str = "") -> list[Layer]:
    """Layers of the first image in a ``docker save`` tarball, oldest first."""
    with tarfile.open(archive_path) as archive:
        manifest = json.load(_member(archive, "manifest.json"))[0]
        config = json.load(_member(archive, manifest["Config"]))
        history = [entry for entry in config.get("history", []) if not entry.get("empty_layer")]
        layers = []
        for index, layer_path in enumerate(manifest["Layers"]):
            created_by = history[index].get("created_by", "") if index < len(history) else ""
            layers.append(_read_layer(index, instruction_from_history(created_by), _member(archive, layer_path)))
    return layers


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = archive.extractfile(name)
    if handle is None:
        raise ValueError(f"{name} missing from the saved image")
    return handle


# -- analysis ---------------------------------------------------------------------


def _cache_rule(path: str) -> str | None:
    for rule, patterns in CACHE_RULES.items():
        if matches_any(path, patterns):
            return rule
    return None


def _cache_root(path: str, rule: str) -> str:
    """The directory a cache pattern names, to group thousands of cache files."""
    for pattern in CACHE_RULES[rule]:
        root = pattern.rstrip("/*")
        depth = root.count("/") + 1
        candidate = "/".join(path.split("/")[:depth])
        if matches_any(candidate, (root,)):
            return candidate
    return path


def _ancestors(path: str) -> Iterable[str]:
    while "/" in path:
        path = path.rpartition("/")[0]
        yield path


def _waste_rule(path: str, killer: Layer | None) -> str:
    rule = _cache_rule(path)
    if rule is not None:
        return rule
    if killer is not None and re.search(r"\bch(own|mod)\b", killer.instruction):
        return RULE_COPY_CHOWN
    return RULE_OVERWRITTEN if killer is not None and path in killer.files else RULE_CLEANUP_SAME_LAYER


def _group_path(path: str, rule: str, deleted_prefix: str | None) -> str:
    if rule in CACHE_RULES:
        return _cache_root(path, rule)
    if deleted_prefix is not None:
        return deleted_prefix
    return "/".join(path.split("/")[:3])


def find_waste(layers: Sequence[Layer]) -> list[Offender]:
    """Bytes hidden by later layers plus caches left visible, grouped and sorted.

    Waste held by base-image layers is tagged ``base-image`` and sorted last:
    the user's Dockerfile cannot remove it, only a different base can.
    """
    owner: dict[str, tuple[int, int]] = {}  # visible path -> (layer index, size)
    groups: dict[tuple[str, int, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def waste(path: str, layer_index: int, size: int, rule: str, reason: str, group: str) -> None:
        entry = groups[(group, layer_index, rule, reason)]
        entry[0] += size
        entry[1] += 1
        layers[layer_index].wasted_bytes += size

    for layer in layers:
        hidden_roots = layer.whiteouts | layer.opaque
        if hidden_roots:
            for path in list(owner):
                root = path if path in layer.whiteouts else None
                if root is None:
                    root = next((a for a in _ancestors(path) if a in hidden_roots), None)
                if root is None:
                    continue
                source, size = owner.pop(path)
                rule = _waste_rule(path, layer)
                verb = "replaced" if path in layer.files else "deleted"
                reason = f"{verb} by layer {layer.index}"
                waste(path, source, size, rule, reason, _group_path(path, rule, root))
        for path, size in layer.files.items():
            previous = owner.get(path)
            if previous is not None and previous[0] != layer.index:
                rule = _waste_rule(path, layer)
                waste(
                    path,
                    previous[0],
                    previous[1],
                    rule,
                    f"overwritten by layer {layer.index}",
                    _group_path(path, rule, None),
                )
            owner[path] = (layer.index, size)
    for path, (source, size) in owner.items():
        rule = _cache_rule(path)
        if rule is not None and size:
            waste(path, source, size, rule, "cache left in the image", _group_path(path, rule, None))
    offenders = [
        Offender(
            path="/" + group,
            size=size,
            files=count,
            layer=layer_index,
            rule=RULE_BASE_IMAGE if layers[layer_index].in_base else rule,
            reason=reason,
        )
        for (group, layer_index, rule, reason), (size, count) in groups.items()
        if size > 0
    ]
    offenders.sort(key=lambda o: (layers[o.layer].in_base, -o.size, o.path))
    return offenders


def dive_efficiency(layers: Sequence[Layer]) -> tuple[float, int]:
    """Dive's efficiency score and wasted bytes; see the module docstring."""
    cumulative: dict[str, int] = defaultdict(int)
    minimum: dict[str, int] = {}
    seen: dict[str, int] = defaultdict(int)
    stacked_files: dict[str, int] = {}
    stacked_dirs: set[str] = set()
    for layer in layers:
        entries = set(layer.files) | layer.dirs
        parents = {a for path in entries | layer.whiteouts for a in _ancestors(path)}
        leaves = [(path, layer.files.get(path, 0)) for path in entries if path not in parents]
        for path in layer.whiteouts:
            size = 0
            if path in stacked_dirs:
                prefix = path + "/"
                size = sum(s for p, s in stacked_files.items() if p.startswith(prefix))
            leaves.append((path, size))
        for path, size in leaves:
            cumulative[path] += size
            minimum[path] = min(minimum.get(path, size), size)
            seen[path] += 1
        for root in layer.whiteouts:
            prefix = root + "/"
            for path in [p for p in stacked_files if p == root or p.startswith(prefix)]:
                del stacked_files[path]
            stacked_dirs = {d for d in stacked_dirs if d != root and not d.startswith(prefix)}
        stacked_files.update(layer.files)
        stacked_dirs |= layer.dirs
    total = sum(cumulative.values())
    score = 1.0 if total == 0 else sum(minimum.values()) / total
    wasted = sum(size for path, size in cumulative.items() if seen[path] >= 2)
    return score, wasted


def analyze_layers(layers: list[Layer], image: str = "", base_layers: int = 0) -> LayerAnalysis:
    """Waste and score for ``layers``; the first ``base_layers`` came with the base image."""
    for layer in layers[:base_layers]:
        layer.in_base = True
    offenders = find_waste(layers)
    score, dive_wasted = dive_efficiency(layers)
    return LayerAnalysis(
        image=image, layers=layers, offenders=offenders, efficiency=score, dive_wasted_bytes=dive_wasted
    )


def analyze_image(engine: Engine, ref: str, base: str | None = None) -> LayerAnalysis:
    """Save ``ref`` to a temporary tarball and analyse its layers.

    ``base`` names the image ``ref`` was built FROM, when known and local, so
    waste the Dockerfile cannot fix is told apart from waste it can.
    """
    base_layers = 0
    if base is not None and engine.has_image(base):
        base_layers = engine.inspect_image(base).layer_count
    with tempfile.TemporaryDirectory(prefix="dopt-layers-") as work:
        archive = engine.save(ref, Path(work) / "image.tar")
        return analyze_layers(read_saved_image(archive), image=ref, base_layers=base_layers)


# -- rendering --------------------------------------------------------------------


def _human(size: int) -> str:
    return format_bytes(size)


def render_terminal(analysis: LayerAnalysis, *, color: bool | None = None, width: int = 30, top: int = 8) -> str:
    """Bars per layer (wasted part in red when ``color``), then the offenders."""
    if color is None:
        color = sys.stdout.isatty()
    red, dim, reset = ("\033[31m", "\033[2m", "\033[0m") if color else ("", "", "")
    largest = max((layer.size for layer in analysis.layers), default=0) or 1
    lines = [
        f"{analysis.image}: {_human(analysis.total_size)} in {len(analysis.layers)} layers, "
        f"wasted {_human(analysis.wasted_bytes)}, efficiency {analysis.efficiency:.1%} (Dive's score)"
    ]
    for layer in analysis.layers:
        cells = round(layer.size / largest * width)
        wasted_cells = min(cells, round(layer.wasted_bytes / largest * width))
        bar = "█" * (cells - wasted_cells) + red + "█" * wasted_cells + reset
        pad = " " * (width - cells)
        instruction = layer.instruction if len(layer.instruction) <= 70 else layer.instruction[:67] + "..."
        if layer.in_base:
            instruction = f"(base) {instruction}"
        lines.append(f"{layer.index:>3} {_human(layer.size):>9} {bar}{pad} {dim}{instruction}{reset}")
    if analysis.offenders:
        lines.append("largest wasted bytes:")
        for offender in analysis.offenders[:top]:
            lines.append(
                f"  {_human(offender.size):>9}  {offender.path} ({offender.files} files, layer "
                f"{offender.layer}, {offender.reason}) -> {offender.rule}"
            )
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;width:.9rem;height:.9rem;vertical-align:middle;margin:0 .3rem 0 1rem}
svg text{font-size:12px;font-family:ui-monospace,monospace}
"""

KEPT_COLOUR = "#4a7bd0"
BASE_COLOUR = "#a9bfe6"
WASTED_COLOUR = "#d9534f"


def _svg_chart(named: Sequence[tuple[str, LayerAnalysis]]) -> str:
    """Horizontal bars for every layer of every image, on one shared scale."""
    row, label_width, bar_width, gap = 22, 90, 520, 28
    largest = max((layer.size for _, a in named for layer in a.layers), default=0) or 1
    height = sum(len(a.layers) * row + gap for _, a in named) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 520}" '
        f'height="{height}" role="img" aria-label="layer sizes">'
    ]
    y = 0
    for name, analysis in named:
        parts.append(f'<text x="0" y="{y + 16}" font-weight="bold">{html.escape(name)}</text>')
        y += gap - 6
        for layer in analysis.layers:
            kept = layer.size - layer.wasted_bytes
            kept_w = kept / largest * bar_width
            wasted_w = layer.wasted_bytes / largest * bar_width
            title = html.escape(
                f"layer {layer.index}: {_human(layer.size)}, wasted {_human(layer.wasted_bytes)} - {layer.instruction}"
            )
            parts.append(f'<g class="layer"><title>{title}</title>')
            parts.append(f'<text x="0" y="{y + 15}">{layer.index:>2} {_human(layer.size)}</text>')
            colour = BASE_COLOUR if layer.in_base else KEPT_COLOUR
            parts.append(
                f'<rect x="{label_width}" y="{y + 3}" width="{kept_w:.1f}" height="{row - 6}" fill="{colour}"/>'
            )
            if wasted_w > 0:
                parts.append(
                    f'<rect x="{label_width + kept_w:.1f}" y="{y + 3}" width="{wasted_w:.1f}" '
                    f'height="{row - 6}" fill="{WASTED_COLOUR}"/>'
                )
            short = layer.instruction if len(layer.instruction) <= 64 else layer.instruction[:61] + "..."
            parts.append(
                f'<text x="{label_width + bar_width + 8}" y="{y + 15}" fill="#555">{html.escape(short)}</text></g>'
            )
            y += row
        y += 6
    parts.append("</svg>")
    return "".join(parts)


def _summary_table(named: Sequence[tuple[str, LayerAnalysis]]) -> str:
    rows = ["<table><tr><th></th><th>image</th><th>size</th><th>layers</th><th>wasted</th><th>efficiency</th></tr>"]
    for name, analysis in named:
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(analysis.image)}</td>"
            f'<td class="num">{_human(analysis.total_size)}</td><td class="num">{len(analysis.layers)}</td>'
            f'<td class="num">{_human(analysis.wasted_bytes)}</td>'
            f'<td class="num">{analysis.efficiency:.1%}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _offender_table(analysis: LayerAnalysis, top: int) -> str:
    if not analysis.offenders:
        return "<p>No wasted bytes found.</p>"
    rows = ["<table><tr><th>wasted</th><th>path</th><th>files</th><th>layer</th><th>why</th><th>dopt rule</th></tr>"]
    for offender in analysis.offenders[:top]:
        rows.append(
            f'<tr><td class="num">{_human(offender.size)}</td>'
            f"<td><code>{html.escape(offender.path)}</code></td>"
            f'<td class="num">{offender.files}</td><td class="num">{offender.layer}</td>'
            f"<td>{html.escape(offender.reason)}</td><td><code>{html.escape(offender.rule)}</code></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def render_html(
    named: Mapping[str, LayerAnalysis] | Sequence[tuple[str, LayerAnalysis]],
    *,
    title: str = "dopt layers",
    top: int = 10,
) -> str:
    """A self-contained page: no scripts, fonts or images from elsewhere."""
    items = list(named.items()) if isinstance(named, Mapping) else list(named)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _summary_table(items),
        '<p class="legend">Layer sizes on one scale:<span style="background:'
        f'{BASE_COLOUR}"></span>base image<span style="background:{KEPT_COLOUR}"></span>kept'
        f'<span style="background:{WASTED_COLOUR}"></span>wasted</p>',
        _svg_chart(items),
    ]
    for name, analysis in items:
        body.append(f"<h2>Largest wasted bytes: {html.escape(name)}</h2>")
        body.append(_offender_table(analysis, top))
    body.append(
        "<p><small>Efficiency is Dive's score: the sum over paths of their smallest size in any "
        "layer divided by the sum of their sizes over all layers.</small></p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
