#!/bin/bash
# work/ as a local disk, on the local file store.
EPFS_FILESTORE=local
. "$(dirname "$0")/workflows.sh"
