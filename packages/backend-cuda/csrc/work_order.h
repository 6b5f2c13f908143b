// work_order.h — the order in which the Hopper kernel's causal grid takes its work items (one CTA each).
// Causal items differ in length (a Q block sees the keys up to its diagonal), so the heaviest start first and the
// light ones fill in at the end. Taken across all heads at once, the CTAs running together each stream a different
// head's K/V from DRAM; taken in groups of `groupHeads` heads whose K/V fit in L2 (the launch picks the count), the
// CTAs running together read the same few heads' K/V, heaviest first within each group. Plain C++ so that a host
// test can hold it to its definition (src/work-order.test.ts).
#pragma once

#if defined(__CUDACC__)
#define SA_HOST_DEVICE __host__ __device__
#else
#define SA_HOST_DEVICE
#endif

namespace sa {

// A causal work item: the (sequence, query head) pair bh = s·Hq + h and its Q block.
struct CausalItem {
  int bh, qb;
};

// Item `index` of `heads` × `qBlocks`: the pairs in ⌈heads / groupHeads⌉ groups of consecutive pairs, as equal as
// whole kv heads allow (`unit` pairs share one: the first of them one kv head larger), each group's items by Q block
// from the last (the heaviest) to the first, its pairs in turn within a Q block. Equal groups because a small last
// group would start its heaviest items when the rest of the grid is nearly done, leaving most SMs idle behind them;
// whole kv heads so that no group reads more K/V than the budget its size came from. groupHeads ≥ heads is one
// group: the order across all heads. Requires heads · qBlocks < 2³¹, unit ≥ 1 dividing heads, and groupHeads a
// multiple of unit (causal_group_pairs gives one).
SA_HOST_DEVICE inline CausalItem causal_item(int index, int heads, int qBlocks, int groupHeads, int unit) {
  const int units = heads / unit, groupUnits = (groupHeads < heads ? groupHeads : heads) / unit;
  const int groups = (units + groupUnits - 1) / groupUnits;
  const int base = units / groups * unit, larger = units % groups;  // pairs per group; how many groups have a unit more
  const int largeItems = larger * (base + unit) * qBlocks;
  const bool large = index < largeItems;
  const int width = large ? base + unit : base;  // pairs in this item's group
  const int k = large ? index : index - largeItems;
  const int group = k / (width * qBlocks);
  const int first = (large ? 0 : larger * (base + unit)) + group * width;
  const int j = k - group * width * qBlocks;
  return CausalItem{first + j % width, qBlocks - 1 - j / width};
}

// The same item as an index of the order across all heads (pair = index mod heads, the last Q block first), which is
// how the kernel's work_item reads an index: a CTA maps its place to it once, so the order costs nothing in the loop.
SA_HOST_DEVICE inline int causal_item_index(int place, int heads, int qBlocks, int groupHeads, int unit) {
  const CausalItem c = causal_item(place, heads, qBlocks, groupHeads, unit);
  return (qBlocks - 1 - c.qb) * heads + c.bh;
}

// Pairs per group for a causal grid: as many kv heads as fit in `budget` bytes at `kvHeadBytes` each (at least one),
// times the query heads that share a kv head (consecutive pairs of a sequence do); `heads` (one group) when budget
// is 0.
inline int causal_group_pairs(long long budget, long long kvHeadBytes, int heads, int queryHeadsPerKv) {
  if (budget <= 0) return heads;
  long long kv = budget / (kvHeadBytes > 0 ? kvHeadBytes : 1);
  if (kv < 1) kv = 1;
  const long long pairs = kv * queryHeadsPerKv;
  return pairs < heads ? int(pairs) : heads;
}

}  // namespace sa
