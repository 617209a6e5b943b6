import { test } from "node:test";
import assert from "node:assert/strict";

import { paginate } from "../src/paginate.js";

test("the first page holds the first items", () => {
  assert.deepEqual(paginate([1, 2, 3, 4, 5], 1, 2), [1, 2]);
});
