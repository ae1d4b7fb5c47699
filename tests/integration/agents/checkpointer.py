"""Checkpointer: saves a checkpoint per step and reports what restore() gave it."""


def agent(task, ctx):
    seen = ctx.restore("step")
    for step in range(int(task.get("steps", 3))):
        ctx.checkpoint("step", step)
    return {"restored": seen}
