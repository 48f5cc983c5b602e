from hepbench.cli import main

raise SystemExit(main())
