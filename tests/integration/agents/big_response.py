"""Big response: returns a string of task["size"] characters (for the response size limit)."""


def agent(task, ctx):
    return {"text": "y" * int(task.get("size", 5000))}
