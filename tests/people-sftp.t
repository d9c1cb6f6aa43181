#!/bin/bash
# People and data on the SFTP file store, against a real sshd.
EPFS_FILESTORE=sftp
. "$(dirname "$0")/people.sh"
