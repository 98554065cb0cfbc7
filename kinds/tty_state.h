// The state of a terminal that restore sets back (kinds/tty.cc): termios,
// window size, and the bytes queued in a pseudo-terminal pair.
//
// A terminal's queues cannot be read without consuming them (there is no
// peek), so the dump takes them and puts them back when the tree runs on
// (PutQueued, the same code restore uses):
//   input   bytes written to the master, waiting for a reader of the slave.
//           They went through the slave's input processing already (echo,
//           CR to NL, line editing): in canonical mode they are read one
//           complete line per read() (0 bytes: an end-of-file mark); what
//           follows the last complete line (a line being typed) is read
//           with canonical mode switched off for a moment. They are put
//           back with TIOCSTI, one byte at a time (synchronous, unlike a
//           write to the master, which the kernel processes later), under
//           settings that do no processing again: no echo, no signals, no
//           translation, no editing characters.
//   output  bytes written to the slave, waiting for a reader of the master:
//           they went through output processing already, so they are
//           written back to the slave with OPOST off.
// A line that does not end with a line delimiter was ended by an
// end-of-file mark (an empty one is the mark alone): it gets one again.
// What is not carried: the input of a pair whose slave was never opened
// (reading it would open the slave, which the program would see).
#pragma once

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

Status ReadTermios(int fd, img::TtyTermios* out);
Status ApplyTermios(int fd, const img::TtyTermios& t);
Status ReadWinsize(int fd, img::TtyWinsize* out);
Status ApplyWinsize(int fd, const img::TtyWinsize& w);

// Takes the queued bytes of a pair into |pair| (termios already read):
// the output through |master|, the input through |slave| (-1: not read).
Status TakeQueued(int master, int slave, img::TtyPair* pair);
// Puts them back through |slave|, a slave end of the pair, and leaves the
// pair's termios set.
Status PutQueued(int slave, const img::TtyPair& pair);
bool HasQueued(const img::TtyPair& pair);

}  // namespace cf::kinds
