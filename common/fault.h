// Fault injection: CF_FAULT=<point>[,<point>...] makes the named points fail.
//
// Tests use it to prove that a dump failing at any stage leaves the target
// running and unchanged, and that a failed restore leaves nothing behind.
#pragma once

#include "common/status.h"

namespace cf {

// True when |point| is listed in $CF_FAULT.
bool FaultArmed(const char* point);

// OK, or an error "fault injected at <point>" when the point is armed, or
// "interrupted by SIG..." once a termination signal came (common/interrupt.h).
Status CheckFault(const char* point);

}  // namespace cf

#define FAULT_POINT(name) RETURN_IF_ERROR(::cf::CheckFault(name))
