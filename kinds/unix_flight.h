// Files in flight in unix socket queues (SCM_RIGHTS).
//
// Dump: peeking a message installs copies of its descriptors in criu-fast;
// they are described by the kinds' own code (Read, then their tree pass),
// as if criu-fast were one more process of the tree, and saved with the
// socket object whose queue holds them (flight_fds, flight_objects). One
// open file description sent twice is one file.
// Restore: the socket object's creator makes those files first (the
// objects they need, then each description), sends them with their
// messages, and closes its copies.
//
// A file in flight whose object the tree holds too (a pipe whose other end
// a process holds, or a description that a process holds as well) is not
// made by the socket's creator: that would make two pipes of one. It is
// named by its description's tree-wide file_id (Fd.tree_file_id), the
// object's creator makes it with the object's other descriptions, and the
// socket's creator takes it from those it created or inherited (the
// restore plan makes that creator an ancestor, or the same process, and
// creates the object first: SharedObject::needs).
//
// An epoll instance in flight that no process holds keeps its watch list:
// each target must be a unix socket of the same socket object (the one in
// whose queue it sits, or its peer), found in the tree by
// kcmp(KCMP_EPOLL_TFD) and saved by inode (EpollTarget.flight_sock). The
// object's creator adds the targets back once its sockets exist, through
// its own copy of the instance, with the socket put at the old fd number
// for the epoll_ctl (so the instance records the same number).
#pragma once

#include <sys/stat.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"

namespace cf::kinds {

class FlightFiles final : public TreeFds {
 public:
  // |tree|: the tree's descriptors, which files in flight may share
  // objects with (null: none).
  FlightFiles(DumpContext& ctx, TreeFds* tree);
  ~FlightFiles() override;
  // Takes the descriptors of one message; returns their file ids.
  Result<std::vector<uint32_t>> Add(std::vector<UniqueFd> fds);
  // Runs the kinds' tree passes and moves the records into |fds|, |objects|.
  // |object_socks|: the inodes of the socket object's own sockets (what an
  // epoll instance in flight may watch).
  Status Finish(google::protobuf::RepeatedPtrField<img::Fd>* fds,
                google::protobuf::RepeatedPtrField<img::FileObject>* objects,
                const std::set<uint64_t>& object_socks);
  bool empty() const { return files_.empty(); }

  // TreeFds, for the kinds' passes.
  const std::vector<pid_t>& order() const override { return order_; }
  std::vector<img::Fd*> FdsOf(pid_t) override;
  void AddObject(pid_t, img::FileObject obj) override { objects_.push_back(std::move(obj)); }

 private:
  struct File;
  // Names |f| by the tree's file_id when the tree holds its object.
  Result<bool> LinkToTree(File& f);
  // The watch list of epoll instance |f|, which only criu-fast holds.
  Status ReadEpoll(File& f, const std::set<uint64_t>& object_socks);

  DumpContext& ctx_;
  TreeFds* tree_;
  std::vector<pid_t> order_;
  std::vector<std::unique_ptr<File>> files_;
  std::vector<img::FileObject> objects_;
};

// Makes the in-flight files of a socket object again: file_id -> descriptor.
// Those with a tree_file_id are copies of ctx.tree_files.
Result<std::map<uint32_t, UniqueFd>> MakeFlightFiles(const google::protobuf::RepeatedPtrField<img::Fd>& fds,
                                                     const google::protobuf::RepeatedPtrField<img::FileObject>& objects,
                                                     RestoreContext& ctx);

// Adds the targets of the epoll instances in flight among |fds| (made:
// |made|, by file_id) through the object's sockets |socks| (inode -> fd).
Status AddFlightEpollTargets(const google::protobuf::RepeatedPtrField<img::Fd>& fds,
                             const std::map<uint32_t, UniqueFd>& made, const std::map<uint64_t, int>& socks);

// kinds/epoll.cc: adds |t| to epoll |efd| through |source|, which holds the
// watched file, put at fd t.tfd() for the call (what that number held is
// put back after).
Status AddEpollTarget(int efd, const img::EpollTarget& t, int source);

}  // namespace cf::kinds
