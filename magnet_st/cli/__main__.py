import sys

from magnet_st.cli import main

sys.exit(main())
