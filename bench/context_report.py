#!/usr/bin/env python3
"""Reads bench/context.sh's results (one JSON object per line: context, refrain's and llama.cpp's bench output),
prints a Markdown table and writes an SVG line chart of milliseconds per decoded token against the context."""
import argparse, json, os, sys


def chart(series, path, title):
    # series: {name: [(x, y), ...]}; a plain SVG with axes, ticks and a legend.
    W, H, L, R, T, B = 640, 400, 70, 20, 40, 60
    xs = sorted({x for pts in series.values() for x, _ in pts})
    ymax = max(y for pts in series.values() for _, y in pts) * 1.1
    xmax = max(xs)
    sx = lambda x: L + (W - L - R) * x / xmax
    sy = lambda y: H - B - (H - T - B) * y / ymax
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
           f'<text x="{(L+W-R)/2}" y="{H-15}" text-anchor="middle">tokens already in the cache</text>',
           f'<text x="18" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 18 {(T+H-B)/2})">ms per decoded token</text>']
    for x in xs:
        out.append(f'<line x1="{sx(x):.1f}" y1="{H-B}" x2="{sx(x):.1f}" y2="{H-B+5}" stroke="black"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{H-B+18}" text-anchor="middle">{x}</text>')
    for i in range(6):
        y = ymax * i / 5
        out.append(f'<line x1="{L-5}" y1="{sy(y):.1f}" x2="{L}" y2="{sy(y):.1f}" stroke="black"/>')
        out.append(f'<text x="{L-8}" y="{sy(y)+4:.1f}" text-anchor="end">{y:.0f}</text>')
        out.append(f'<line x1="{L}" y1="{sy(y):.1f}" x2="{W-R}" y2="{sy(y):.1f}" stroke="#ddd"/>')
    colours = ["#1f77b4", "#d62728", "#2ca02c"]
    for k, (name, pts) in enumerate(series.items()):
        c = colours[k % len(colours)]
        path_d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(sorted(pts)))
        out.append(f'<path d="{path_d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{c}"/>')
        out.append(f'<rect x="{L+15}" y="{T+8+18*k}" width="12" height="12" fill="{c}"/>')
        out.append(f'<text x="{L+32}" y="{T+18+18*k}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--svg", required=True)
    ap.add_argument("--threads", default="2")
    a = ap.parse_args()
    rows = [json.loads(line) for line in sys.stdin if line.strip()]
    model = os.path.basename(rows[0]["refrain"]["model"])
    print(f"{model}, {a.threads} threads, decode after N cached tokens (medians of {rows[0]['refrain']['runs']} runs)\n")
    print("| N | refrain tok/s | ms/token | llama.cpp tok/s | ms/token | ratio | fill N: refrain s | llama.cpp s | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    ours, theirs = [], []
    for r in rows:
        o = r["refrain"]["results"][0]
        t = r["llama_cpp"]["results"][0] if r["llama_cpp"] else None
        ours.append((r["context"], 1000 / o["tg_tps"]))
        line = f"| {r['context']} | {o['tg_tps']:.1f} | {1000/o['tg_tps']:.1f} | "
        if t:
            theirs.append((r["context"], 1000 / t["tg_tps"]))
            line += f"{t['tg_tps']:.1f} | {1000/t['tg_tps']:.1f} | {o['tg_tps']/t['tg_tps']:.2f} | "
            line += f"{o['context_fill_seconds']:.1f} | {t['context_fill_seconds']:.1f} | "
        else:
            line += f"– | – | – | {o['context_fill_seconds']:.1f} | – | "
        line += f"{r['refrain']['peak_rss_bytes']/2**20:.0f} MiB |"
        print(line)
    series = {"refrain": ours}
    if theirs:
        series["llama.cpp"] = theirs
    chart(series, a.svg, f"Decode cost against context: {model}, {a.threads} threads")
    # The slope between consecutive points: linear growth keeps it roughly constant (µs per cached position).
    print("\nrefrain's cost per cached position between consecutive N: " + ", ".join(
        f"{(b[1]-a_[1])*1000/(b[0]-a_[0]):.2f} µs" for a_, b in zip(ours, ours[1:])))
    print(f"chart: {a.svg}")


if __name__ == "__main__":
    main()
