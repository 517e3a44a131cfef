# Source this file: `. scripts/env.sh`. Used by developers and by .ci/run so that both share one
# warm build directory outside the work tree.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/citydata-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
mkdir -p "$CARGO_TARGET_DIR"

# Cargo decides whether a crate is fresh by comparing its sources' modification times with its
# last build's. A work tree laid anew (a fresh checkout that keeps the files' old times) or one
# switched between commits can hold changed sources that look older than an artifact built from
# other contents, and cargo then links the stale artifact: in December 2026 a release binary
# ran an identity-number parser two commits old for a day. So the sources that differ from the
# commit this target directory last saw are touched (the tree's own edits already have new times).
__citydata_root="$(git -C "$(dirname "${BASH_SOURCE[0]:-$0}")" rev-parse --show-toplevel 2>/dev/null || true)"
if [ -n "$__citydata_root" ]; then
  __citydata_head="$(git -C "$__citydata_root" rev-parse HEAD 2>/dev/null || true)"
  __citydata_seen="$(cat "$CARGO_TARGET_DIR/.citydata-last-head" 2>/dev/null || true)"
  if [ -n "$__citydata_head" ] && [ "$__citydata_head" != "$__citydata_seen" ]; then
    if [ -n "$__citydata_seen" ] && git -C "$__citydata_root" cat-file -e "$__citydata_seen^{commit}" 2>/dev/null; then
      # Only those not edited since the stamp was written: an edited file is newer already,
      # and touching it again would rebuild its crate once more after every commit.
      (cd "$__citydata_root" && git diff --name-only "$__citydata_seen" HEAD -- crates | while read -r f; do
        if [ -f "$f" ] && ! [ "$f" -nt "$CARGO_TARGET_DIR/.citydata-last-head" ]; then touch "$f"; fi
      done)
    else
      # No common history with what was built: every source is touched once.
      find "$__citydata_root/crates" -type f -exec touch {} +
    fi
    echo "$__citydata_head" > "$CARGO_TARGET_DIR/.citydata-last-head"
  fi
fi
unset __citydata_root __citydata_head __citydata_seen
