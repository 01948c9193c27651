import sys

from search.run import main

sys.exit(main())
