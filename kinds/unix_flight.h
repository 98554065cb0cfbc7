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
#pragma once

#include <sys/stat.h>

#include <map>
#include <memory>
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
  Status Finish(google::protobuf::RepeatedPtrField<img::Fd>* fds,
                google::protobuf::RepeatedPtrField<img::FileObject>* objects);
  bool empty() const { return files_.empty(); }

  // TreeFds, for the kinds' passes.
  const std::vector<pid_t>& order() const override { return order_; }
  std::vector<img::Fd*> FdsOf(pid_t) override;
  void AddObject(pid_t, img::FileObject obj) override { objects_.push_back(std::move(obj)); }

 private:
  struct File;
  // Names |f| by the tree's file_id when the tree holds its object.
  Result<bool> LinkToTree(File& f);

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

}  // namespace cf::kinds
