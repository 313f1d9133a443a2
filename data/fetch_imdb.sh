#!/bin/sh
# Download the official IMDB archive (aclImdb_v1.tar.gz, SHA-256 checked, resumable) into the
# lstm_adv cache dir ($LSTM_ADV_CACHE, else the user cache dir). Extra key=value arguments are
# passed on, e.g. `data/fetch_imdb.sh cache_dir=/data/lstm_adv`; see --help.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" -m lstm_adv.data fetch "$@"
