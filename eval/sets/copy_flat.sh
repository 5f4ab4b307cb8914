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

# installed PKG SRC SUFFIX NAME...: makes sure SRC holds each NAME+SUFFIX, installing the Debian package
# PKG (without its recommends) when one is missing; fails with a message naming the first still missing.
installed() {
  local pkg="$1" src="$2" suffix="$3" name apt
  shift 3
  for name in "$@"; do
    if [ ! -f "$src/$name$suffix" ]; then
      apt=$(test "$(id -u)" = 0 || echo sudo)
      $apt apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
      break
    fi
  done
  for name in "$@"; do
    if [ ! -f "$src/$name$suffix" ]; then
      echo "$src/$name$suffix is missing after installing $pkg (does dpkg exclude /usr/share/doc?)" >&2
      return 1
    fi
  done
}

# The recipe was not given its one argument, DEST.
usage_dest() {
  echo "usage: $0 DEST" >&2
  exit 2
}

# copy_debian_docs PKG SRC SUFFIX DEST NAME...: SRC/NAME+SUFFIX of the Debian package PKG, flat into DEST.
copy_debian_docs() {
  local pkg="$1" src="$2" suffix="$3" dest="$4"
  shift 4
  installed "$pkg" "$src" "$suffix" "$@"
  printf "%s$suffix\n" "$@" | copy_flat "$src" "$dest" "$suffix"
}
