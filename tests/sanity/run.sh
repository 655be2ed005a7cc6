#!/usr/bin/env bash
# make sanity: ansible-test sanity on a copy of the collection laid out as
# ansible_collections/goship/deploy (ansible-test needs that path). The copy holds the files
# git knows about (tracked, or new and not ignored), so local state never leaks in.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=build/sanity/ansible_collections/goship/deploy
rm -rf build/sanity && mkdir -p "$root"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [[ -e $f ]] && printf '%s\0' "$f"
done | xargs -0 cp --parents -t "$root"
# ansible-test fetches a pip bootstrap script from a host this machine cannot reach;
# tests/sanity/get_pip_offline.py stands in for it (see its docstring).
cache=~/.ansible/test/cache
mkdir -p "$cache"
pip_version=$(python - <<'PY'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cp tests/sanity/get_pip_offline.py "$cache/get_pip_${pip_version//./_}.py"
cd "$root"
# ansible-test finds the files to check through git.
git init -q && git add -A
ansible-test sanity --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$@"
