"""Several interlock instances sharing one pool (`merge`: the shared facts and how they merge)."""
