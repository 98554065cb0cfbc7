#!/bin/bash
# Packet socket rings mapped into the process (tests/progs/packet_mmap.c;
# zdtm packet_sock_mmap): a TPACKET_V2 rx ring on lo mapped MAP_SHARED and
# an rx+tx pair of rings mapped MAP_PRIVATE. Restore maps each VMA from the
# restored socket (whose rings the packet kind made again), so the program
# finds both mappings at their addresses naming their sockets, and a
# datagram sent over lo lands in a frame of the shared ring.
# Dump (kill) + restore, twice.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog packet_mmap "$W"
pid=$PROG_PID
check_pass "$W"

for round in 1 2; do
  dump_kill "dump$round" "$pid" "$E2E_TMP/img$round"
  restore_d "restore$round" "$E2E_TMP/img$round" "$pid"
  check_pass "$W"
done
log "PASS"
