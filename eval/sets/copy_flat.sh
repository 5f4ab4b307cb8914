# Sourced by the sets' recipes. copy_flat SRC DEST SUFFIX, with the paths (relative to SRC) on standard
# input: copies each file into DEST under a flat, readable name, which becomes its document id ("a/b.md"
# becomes "a-b.md"), after removing what a previous run left. Prints how many files it copied.
copy_flat() {
  local src="$1" dest="$2" suffix="$3" rel name count=0
  mkdir -p "$dest"
  find "$dest" -maxdepth 1 -type f -name "*$suffix" -delete
  while IFS= read -r rel; do
    name="$(printf '%s' "$rel" | tr '/' '-' | LC_ALL=C tr -cd 'A-Za-z0-9._-')"
    case "$name" in *"$suffix") ;; *) name="$name$suffix" ;; esac
    if [ -e "$dest/$name" ]; then
      echo "duplicate document id: $name" >&2
      return 1
    fi
    cp "$src/$rel" "$dest/$name"
    count=$((count + 1))
  done
  echo "copied $count files into $dest"
}
