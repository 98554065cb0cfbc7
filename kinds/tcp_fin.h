// Connections in closing states (FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT,
// LAST_ACK, CLOSING) for kinds/tcp_socket.cc. Repair mode shows and takes
// only data, so the FINs are put back by hand: ours by shutdown() of the
// restored socket (in the send queue's repair mode when the peer had
// acknowledged it), the peer's (and its acknowledgement of ours) as a
// segment made here and sent to the socket through a raw socket, marked
// (kFinMark) so that the network lock lets it through.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "criu_fast.pb.h"

namespace cf::kinds {

constexpr uint32_t kFinMark = 0xC114;  // SO_MARK of the made segments

// Which FINs a state has seen: one we sent, one we received.
bool SentFin(uint32_t state);
bool GotFin(uint32_t state);
bool IsClosingState(uint32_t state);

// The sequence numbers as an established connection has them (without the
// FINs), before the connection is set up in repair mode.
void SeqsWithoutFins(const img::TcpSocket& t, uint32_t* snd_seq, uint32_t* rcv_seq);

// After the queues and the window are back, still in repair mode: the FINs
// of |t|'s state.
Status RestoreFins(int fd, const img::TcpSocket& t);

// A connection that was reset with data left unread: the data in the
// receive queue of a connection made in repair mode to a stand-in peer,
// which then resets it (the original peer is no longer known).
Status RestoreReset(int fd, const img::TcpSocket& t);

}  // namespace cf::kinds
