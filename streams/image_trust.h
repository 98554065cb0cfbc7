// Who may have written an image.
//
// Restore runs as root and creates processes from what an image says (their
// executables, memory, credentials): an image that an unprivileged user
// could have written or replaced is a way to run code as root. So restore
// takes images only from paths that no one but root (or the user running
// criu-fast) can change: the images directory (or stream file), every file
// in it, and every directory above it must be owned by root or by that user
// and not writable by group or others (a directory with the sticky bit, such
// as /tmp, may be writable by all: others cannot rename what they do not
// own). The images directory itself may be writable by others when every
// image in it passes: each is checked again when it is opened.
// --allow-untrusted-images skips the checks.
#pragma once

#include <string>

#include "common/status.h"

namespace cf::streams {

// OK when |path| (an images directory, or one stream file) and what it
// holds can be changed only by root or the effective user; else an error
// naming the first path that others could change, and how.
Status CheckImagesTrusted(const std::string& path);

// From now on, every image file ImageReader opens must itself pass the check
// on its open descriptor: a regular file owned by root or the effective user,
// not writable by group or others. Restore turns it on with the check above,
// so that a file swapped into a directory others can write is refused too.
void SetImageOwnerCheck(bool on);
bool ImageOwnerCheckOn();
// The check of one opened image (OK when SetImageOwnerCheck is off).
Status CheckOpenedImage(int fd, const std::string& path);

}  // namespace cf::streams
