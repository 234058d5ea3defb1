"""Settings from the environment."""
import os

DEFAULT_BATCH_SIZE = 100


def settings(environ=None):
    env = os.environ if environ is None else environ
    return {
        "url": env["STOCKSYNC_WAREHOUSE_URL"],
        "api_key": env["STOCKSYNC_API_KEY"],
        # TODO: validate the batch size (positive, at most 1000)
        "batch_size": int(env.get("STOCKSYNC_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
    }
