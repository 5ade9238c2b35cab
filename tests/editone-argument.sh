# Sourced by the shell tests whose one argument is the `editone` command
# (tests/cli, tests/photo-managers, tests/slurm):
#     . "$(dirname "$0")/../editone-argument.sh"; take_editone_argument "$0" "$@"
# sets EDITONE to that command's absolute path, or prints the usage (no
# argument, or more than one) or what is wrong with it and exits 2.
take_editone_argument() {
    local script=$1
    shift
    if [ $# -ne 1 ]; then
        echo "usage: $script PATH_TO_EDITONE" >&2
        exit 2
    fi
    EDITONE=$1
    case $EDITONE in /*) ;; *) EDITONE=$PWD/$EDITONE ;; esac
    if [ ! -x "$EDITONE" ] || [ -d "$EDITONE" ]; then
        echo "$script: '$EDITONE' is not an executable" >&2
        exit 2
    fi
}
