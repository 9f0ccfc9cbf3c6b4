# Shared by the check scripts (sourced): each check reports ok or FAIL, a failure is remembered, and the verdict
# ends the run.
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; failed=1; }

# verdict NAME: exits 1 saying NAME failed if a check did; else says that all of NAME's checks passed.
verdict() {
    if [[ $failed -ne 0 ]]; then
        echo "$1: FAILED" >&2
        exit 1
    fi
    echo "$1: all checks passed"
}
