import sys

from .forecast import fetch, summarize

if __name__ == "__main__":
    lat, lon = float(sys.argv[1]), float(sys.argv[2])
    print(summarize(fetch(lat, lon)))
