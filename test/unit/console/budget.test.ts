import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConsoleBudget } from "../../../src/daemon/console/budget.js";

describe("ConsoleBudget", () => {
  it("grants input growth up to the limit across accounts, shrinking always", () => {
    const budget = new ConsoleBudget(100);
    const a = budget.open();
    const b = budget.open();
    assert.equal(a.hold(60), true);
    assert.equal(b.hold(41), false, "60 + 41 is over 100");
    assert.equal(b.hold(40), true);
    assert.equal(budget.used, 100);
    assert.equal(a.hold(70), false);
    assert.equal(a.hold(10), true);
    assert.equal(budget.used, 50);
  });

  it("counts output as written and reports exceeded", () => {
    const budget = new ConsoleBudget(100);
    const a = budget.open();
    a.setOutput(150);
    assert.equal(budget.exceeded, true);
    assert.equal(budget.open().hold(1), false, "no input growth while output holds the budget");
    a.setOutput(20);
    assert.equal(budget.exceeded, false);
    assert.equal(budget.used, 20);
  });

  it("releases everything an account held when it closes, and counts nothing after", () => {
    const budget = new ConsoleBudget(100);
    const a = budget.open();
    a.hold(30);
    a.setOutput(30);
    a.close();
    assert.equal(budget.used, 0);
    a.setOutput(50);
    assert.equal(a.hold(10), false);
    assert.equal(budget.used, 0);
  });
});
