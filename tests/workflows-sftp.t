#!/bin/bash
# work/ as a local disk, on the SFTP file store against a real sshd.
EPFS_FILESTORE=sftp
. "$(dirname "$0")/workflows.sh"
