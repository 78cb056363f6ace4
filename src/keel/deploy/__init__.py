"""Taking a model version where it runs: container images (:mod:`keel.deploy.container`),
the SageMaker container contract (:mod:`keel.deploy.contract`) and SageMaker itself
(:mod:`keel.deploy.sagemaker`), built from keel's own parts."""
