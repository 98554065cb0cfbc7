// Sorting a list that is mostly in order already.
#pragma once

#include <algorithm>

namespace cf {

// Sorts |v| by |less|. Lists made of two sorted runs one after the other
// (tens of thousands of mappings in address order, then a few of another
// source) are merged in linear time instead of sorted again.
template <typename Vector, typename Less>
void SortRuns(Vector& v, Less less) {
  auto mid = std::is_sorted_until(v.begin(), v.end(), less);
  if (mid == v.end()) return;
  if (std::is_sorted(mid, v.end(), less)) {
    std::inplace_merge(v.begin(), mid, v.end(), less);
  } else {
    std::sort(v.begin(), v.end(), less);
  }
}

}  // namespace cf
