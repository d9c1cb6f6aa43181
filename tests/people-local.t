#!/bin/bash
# People and data on the local file store.
EPFS_FILESTORE=local
. "$(dirname "$0")/people.sh"
