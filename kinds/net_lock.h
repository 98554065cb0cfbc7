// The network lock: while a tree is dumped and until it is restored, the
// packets of its TCP connections are dropped, so a peer sees neither a reset
// (from a socket that is gone) nor the connection advancing, and simply
// retransmits until the restored socket answers.
//
// One nftables table per dump, "inet criu-fast-<root pid>", holds two drop
// rules per connection (its packets in, by destination, and out, by source).
// A connection is in repair mode (TCP_REPAIR) only while the dump reads it;
// a copy of each locked socket is held until the dump ends:
//   - the dump fails, or runs with -R: the table is deleted;
//   - the dump kills the tree: the held copies, the sockets' last
//     references, are put in repair mode and closed (which sends nothing
//     and frees their addresses), the table stays, its name goes in the
//     inventory, and restore deletes it once the connections are back
//     (UnlockNetwork).
// The copies and the undo belong to a small guard process forked when the
// lock is first taken: if criu-fast dies (even SIGKILL) before the dump
// ends, the guard sees its channel close and deletes the table, so the
// tree, which the kernel detaches then, carries on with working
// connections (what it sent before the table went is retransmitted).
// A tree in a network namespace of its own (kinds/netns.h) has the whole
// namespace locked instead, as CRIU does: the table is made in it at Start,
// and its chains drop every packet but those marked kFinMark; the guard
// enters the namespace to delete it.
// Needs `nft` (nftables) in PATH.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "common/fd.h"
#include "common/status.h"
#include "kinds/inet_addr.h"

namespace cf::kinds {

class NetLock {
 public:
  // Forks the guard; the table is created with the first connection.
  // Without |rules| (--network-lock skip) no packet is dropped; the guard
  // still closes the sockets in repair mode after a dump that killed the tree.
  // |netns| >= 0: the tree's own network namespace, locked as a whole now.
  static Result<std::unique_ptr<NetLock>> Start(pid_t root, bool rules, int netns = -1);
  // Undo() unless Keep() or Undo() was called.
  ~NetLock();
  NetLock(const NetLock&) = delete;
  NetLock& operator=(const NetLock&) = delete;

  // Drops the packets of the connection |local| <-> |peer| from now on.
  Status Lock(const InetAddr& local, const InetAddr& peer);
  // Hands the guard a copy of |sock|, a locked connection.
  Status Hold(const UniqueFd& sock);
  // The tree was killed and the image is complete: the sockets are closed
  // in repair mode, the rules stay for restore to remove (table() is then
  // what the inventory records; empty when no rule was made).
  Status Keep();
  // The rules removed, the copies closed (the tree runs on with them).
  Status Undo();
  std::string table() const { return created_ ? table_ : std::string(); }

 private:
  NetLock(std::string table, bool rules, pid_t guard, UniqueFd channel, int netns)
      : table_(std::move(table)), rules_(rules), guard_(guard), channel_(std::move(channel)), netns_(netns) {}
  Status Finish(char how);

  std::string table_;
  bool rules_ = true;
  pid_t guard_ = -1;
  UniqueFd channel_;
  int netns_ = -1;         // the tree's namespace (borrowed), locked as a whole
  bool created_ = false;   // the table exists
  bool finished_ = false;
};

// Whether nft is there to lock connections.
Status CheckNetLock();

// Locks network namespace |netns| as a whole under |table| (every packet
// dropped but those marked kFinMark): a namespace restore made again, until
// its connections are back.
Status LockNamespace(int netns, const std::string& table);

// Restore: removes the lock |table| a dump left (the connections are back),
// in network namespace |netns| (-1: criu-fast's).
Status UnlockNetwork(const std::string& table, int netns = -1);

}  // namespace cf::kinds
